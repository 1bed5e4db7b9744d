/** Packed arrays (SPEC.md 4.1): layout, checks, alignment, and the v2 grant messages that use them. */
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame } from '../../protocol/codec.ts';
import { fromBytes, toBytes, validatePacked } from '../../protocol/packed.ts';
import { t } from '../../protocol/schema.ts';

const plain = new Packr({ useRecords: false, variableMapSize: true });

function decodeError(value: unknown): { code: string; field: string | undefined } {
  const r = decodeFrame(plain.pack(value));
  if (r.ok) throw new Error('expected a decode error');
  return { code: r.error.code, field: r.error.field };
}

const mapReq = (refs: unknown, v = 2) => ({ v, kind: 'req', type: 'GNTTAB_MAP_GRANT_REF', id: 1, body: { dom: 1, flags: 1, refs } });

describe('packed arrays', () => {
  it('are one bin of little-endian elements, back to back', () => {
    const bytes = encodeFrame({ v: 2, kind: 'req', type: 'GNTTAB_UNMAP_GRANT_REF', id: 1, body: { handles: Uint32Array.of(0x01020304, 5) } });
    // ... a7 "handles" c4 08 04 03 02 01 05 00 00 00
    expect(Buffer.from(bytes).toString('hex')).toContain(`a768616e646c6573c408${'04030201'}${'05000000'}`);
    const r = decodeFrame(bytes);
    expect(r.ok && r.env.body).toEqual({ handles: Uint32Array.of(0x01020304, 5) });
    expect(r.ok && r.env.body.handles).toBeInstanceOf(Uint32Array);
  });

  it('decode i16 elements with their sign', () => {
    // Every i16 array of the messages is a run-records field (4.2, test/protocol/runs.test.ts): the layout itself here.
    const status = t.packed('i16', 8, -13, 0);
    const bytes = toBytes(Int16Array.of(0, -4, -13), 'i16');
    expect(Buffer.from(bytes).toString('hex')).toBe('0000fcfff3ff');
    expect(Array.from(validatePacked(status, Uint8Array.from(bytes), 'status'))).toEqual([0, -4, -13]);
  });

  it('refuse a byte length that is not a whole number of elements (ERR_FIELD_TYPE) and too many elements (ERR_FIELD_RANGE)', () => {
    expect(decodeError(mapReq(new Uint8Array(7)))).toEqual({ code: 'ERR_FIELD_TYPE', field: 'body.refs' });
    expect(decodeError(mapReq(new Uint8Array(4 * 65537)))).toEqual({ code: 'ERR_FIELD_RANGE', field: 'body.refs' });
  });

  it('refuse an array where v2 declares bytes, and bytes where v1 declares an array', () => {
    expect(decodeError(mapReq([1, 2]))).toEqual({ code: 'ERR_FIELD_TYPE', field: 'body.refs' });
    expect(decodeError(mapReq(new Uint8Array(8), 1))).toEqual({ code: 'ERR_FIELD_TYPE', field: 'body.refs' });
    // And v1's own form still decodes in v1.
    expect(decodeFrame(plain.pack(mapReq([8, 9], 1))).ok).toBe(true);
  });

  it('check each element against the declared bounds and name the first one out of range', () => {
    const type = t.packed('i16', 8, -13, 0);
    const status = new Uint8Array(6);
    new DataView(status.buffer).setInt16(4, -14, true);
    expect(() => validatePacked(type, status, 'body.status')).toThrow(expect.objectContaining({ code: 'ERR_FIELD_RANGE', field: 'body.status[2]' }));
    new DataView(status.buffer).setInt16(4, 1, true);
    expect(() => validatePacked(type, status, 'body.status')).toThrow(expect.objectContaining({ code: 'ERR_FIELD_RANGE' }));
  });

  it('are refused on encode when the typed array has the wrong element type', () => {
    expect(() => encodeFrame({ v: 2, kind: 'req', type: 'GNTTAB_UNMAP_GRANT_REF', id: 1, body: { handles: Int32Array.of(1) } })).toThrow(/handles/);
    expect(() => encodeFrame({ v: 2, kind: 'req', type: 'GNTTAB_UNMAP_GRANT_REF', id: 1, body: { handles: [1] } })).toThrow(/handles/);
  });

  it('view the frame bytes when aligned and copy them only when not', () => {
    const buf = new Uint8Array(16);
    new DataView(buf.buffer).setUint32(4, 77, true);
    const aligned = fromBytes('u32', buf.subarray(4, 12));
    expect(aligned.buffer).toBe(buf.buffer);
    expect(Array.from(aligned)).toEqual([77, 0]);
    const odd = new Uint8Array(16);
    odd.set([77, 0, 0, 0], 1);
    const copied = fromBytes('u32', odd.subarray(1, 9));
    expect(copied.buffer).not.toBe(odd.buffer);
    expect(Array.from(copied)).toEqual([77, 0]);
  });

  it('validate a typed array without changing it, and builders refuse bounds outside the element type', () => {
    const type = t.packed('i16', 4, -13, 0);
    const arr = Int16Array.of(0, -1);
    expect(validatePacked(type, arr, 'x')).toBe(arr);
    expect(() => validatePacked(type, Int16Array.of(0, 0, 0, 0, 0), 'x')).toThrow(/exceed 4/);
    expect(() => t.packed('u16', 4, 0, 70000)).toThrow(RangeError);
  });
});
