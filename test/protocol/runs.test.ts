/** Run records (SPEC.md 4.2): layout, the receiver's checks in order, and the native codec against the JS one. */
import { Packr } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame } from '../../protocol/codec.ts';
import { RUN_BYTES, toRuns, useNativeRunCodec, validatePacked } from '../../protocol/packed.ts';
import { t } from '../../protocol/schema.ts';
import { nativeMem } from '../../src/memory/native.ts';

const plain = new Packr({ useRecords: false, variableMapSize: true });
const native = { encodeRuns: nativeMem.encodeRuns, expandRuns: nativeMem.expandRuns };

/** Run records from [first, count, step] triples. */
function records(...runs: Array<[number, number, number]>): Uint8Array {
  const out = new Uint8Array(runs.length * RUN_BYTES);
  const dv = new DataView(out.buffer);
  runs.forEach(([first, count, step], r) => {
    if (first < 0) dv.setInt32(r * RUN_BYTES, first, true); else dv.setUint32(r * RUN_BYTES, first, true);
    dv.setUint32(r * RUN_BYTES + 4, count, true);
    dv.setInt32(r * RUN_BYTES + 8, step, true);
  });
  return out;
}

const unmapRes = (status: unknown) => ({ v: 2, kind: 'res' as const, type: 'GNTTAB_UNMAP_GRANT_REF', id: 1, body: { status } });
const mapRes = (status: unknown, handle: unknown, frame: unknown) =>
  ({ v: 2, kind: 'res' as const, type: 'GNTTAB_MAP_GRANT_REF', id: 1, body: { status, handle, frame, ramPath: '/dev/shm/x' } });

function decodeError(value: unknown): { code: string; field: string | undefined } {
  const r = decodeFrame(plain.pack(value));
  if (r.ok) throw new Error('expected a decode error');
  return { code: r.error.code, field: r.error.field };
}

/** A pseudo-random array with runs of every kind: constant, rising, falling, and jumps (a fixed LCG: the same every run). */
function mixed(n: number, seed: number, of: 'i16' | 'u32'): Int16Array | Uint32Array {
  const arr = of === 'i16' ? new Int16Array(n) : new Uint32Array(n);
  let x = seed >>> 0;
  const next = (): number => { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; return x; };
  let v = 0;
  for (let i = 0; i < n;) {
    const len = 1 + (next() % 40);
    const step = [0, 1, -1, 3][next() % 4]!;
    v = of === 'i16' ? (next() % 60000) - 30000 : next();
    for (let k = 0; k < len && i < n; k++, i++) arr[i] = v + (of === 'i16' ? 0 : k * step);
  }
  return arr;
}

describe('run records', () => {
  afterEach(() => useNativeRunCodec(native)); // as every process with the addon has it

  it('encode the examples of SPEC 4.2 byte for byte', () => {
    const statuses = Buffer.from(encodeFrame(unmapRes(Int16Array.of(0, 0, 0)))).toString('hex');
    expect(statuses).toContain(`a6737461747573c40c${'00000000'}${'03000000'}${'00000000'}`);
    const frames = Buffer.from(encodeFrame(mapRes(new Int16Array(4), Uint32Array.of(1, 2, 3, 4), Uint32Array.of(7, 8, 9, 20)))).toString('hex');
    expect(frames).toContain(`a56672616d65c418${'070000000300000001000000'}${'140000000100000000000000'}`);
  });

  it('decode to the typed array of the element type, whatever the split', () => {
    const r = decodeFrame(plain.pack(mapRes(records([0, 2, 0], [-4, 1, 0]), records([10, 2, 1], [12, 1, 0]), records([9, 3, -3]))));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.env.body.status).toEqual(Int16Array.of(0, 0, -4));
    expect(r.env.body.handle).toEqual(Uint32Array.of(10, 11, 12));
    expect(r.env.body.frame).toEqual(Uint32Array.of(9, 6, 3));
    expect(decodeFrame(plain.pack(unmapRes(new Uint8Array(0)))).ok && 'empty').toBe('empty');
  });

  it('refuse a partial record and a count of 0 (ERR_FIELD_TYPE)', () => {
    expect(decodeError(unmapRes(new Uint8Array(13)))).toEqual({ code: 'ERR_FIELD_TYPE', field: 'body.status' });
    expect(decodeError(unmapRes(records([0, 2, 0], [0, 0, 0])))).toEqual({ code: 'ERR_FIELD_TYPE', field: 'body.status' });
  });

  it('refuse more elements than declared before building anything (ERR_FIELD_RANGE)', () => {
    // 2^32 - 1 elements in 12 bytes: refused from the count, never allocated.
    expect(decodeError(unmapRes(records([0, 0xffffffff, 0])))).toEqual({ code: 'ERR_FIELD_RANGE', field: 'body.status' });
    expect(decodeError(unmapRes(records([0, 65536, 0], [0, 1, 0])))).toEqual({ code: 'ERR_FIELD_RANGE', field: 'body.status' });
    expect(decodeFrame(plain.pack(unmapRes(records([0, 65535, 0], [0, 1, 0])))).ok).toBe(true);
  });

  it('name the first element out of range, counting across runs', () => {
    // GNTST values are -13..0: the run 0, -1, ... reaches -14 at its 15th element, the array's 17th.
    expect(decodeError(unmapRes(records([0, 2, 0], [0, 20, -1])))).toEqual({ code: 'ERR_FIELD_RANGE', field: 'body.status[16]' });
    expect(decodeError(unmapRes(records([1, 1, 0])))).toEqual({ code: 'ERR_FIELD_RANGE', field: 'body.status[0]' });
    // A u32 run that would pass 2^32 - 1.
    expect(decodeError(mapRes(records([0, 3, 0]), records([0xfffffffe, 3, 1]), records([1, 3, 1]))))
      .toEqual({ code: 'ERR_FIELD_RANGE', field: 'body.handle[2]' });
  });

  it('carry the answer for a 4K buffer in a few dozen bytes', () => {
    const n = 8100;
    const handles = new Uint32Array(n).map((_, i) => (1 << 20) + n - 1 - i); // a free list hands slots out in reverse
    const frames = new Uint32Array(n).map((_, i) => (i < 4096 ? 100 + i : i < 8000 ? 9000 + i : 50000 + i));
    const bytes = encodeFrame(mapRes(new Int16Array(n), handles, frames)).byteLength;
    expect(bytes).toBeLessThan(200);
    const r = decodeFrame(encodeFrame(mapRes(new Int16Array(n), handles, frames)));
    expect(r.ok && r.env.body.handle).toEqual(handles);
    expect(r.ok && r.env.body.frame).toEqual(frames);
  });

  it('native and JS codecs write the same records and expand them to the same elements', () => {
    for (const of of ['i16', 'u32'] as const) {
      const type = t.runs(of, 1 << 20);
      for (let seed = 1; seed <= 20; seed++) {
        const arr = mixed(1 + seed * 37, seed, of);
        useNativeRunCodec(undefined);
        const js = toRuns(arr, of);
        const jsBack = validatePacked(type, js, 'x');
        useNativeRunCodec(native);
        const c = toRuns(arr, of);
        expect(Buffer.from(c).equals(Buffer.from(js))).toBe(true);
        expect(validatePacked(type, c, 'x')).toEqual(jsBack);
        expect(jsBack).toEqual(arr);
      }
    }
  });

  it('native and JS codecs agree wherever a run breaks, at every offset of the native split\'s blocks of eight', () => {
    for (const of of ['i16', 'u32'] as const) {
      for (let n = 1; n <= 40; n++) {
        for (let at = 0; at < n; at++) {
          const arr = of === 'i16' ? new Int16Array(n) : new Uint32Array(n);
          for (let i = 0; i < n; i++) arr[i] = 100 + 2 * i + (i >= at ? 7 : 0);
          useNativeRunCodec(undefined);
          const js = toRuns(arr, of);
          useNativeRunCodec(native);
          expect(Buffer.from(toRuns(arr, of)).equals(Buffer.from(js)), `${of} n=${n} break at ${at}`).toBe(true);
        }
      }
    }
  });

  it('refuse to send an element out of range, named as the receiver would name it', () => {
    const status = new Int16Array(20);
    status[17] = -14; // GNTST values are -13..0
    expect(() => encodeFrame(unmapRes(status))).toThrow(expect.objectContaining({ code: 'ERR_FIELD_RANGE', field: 'body.status[17]' }));
    status[17] = -13;
    const r = decodeFrame(encodeFrame(unmapRes(status)));
    expect(r.ok && r.env.body.status).toEqual(status);
  });

  it('the native expansion never writes past its output', () => {
    expect(() => nativeMem.expandRuns(records([0, 5, 1]), new Uint32Array(4))).toThrow(/more elements/);
    expect(() => nativeMem.expandRuns(records([0, 3, 1]), new Uint32Array(4))).toThrow(/fewer elements/);
    expect(() => nativeMem.expandRuns(new Uint8Array(13), new Uint32Array(4))).toThrow(/whole 12-byte records/);
  });
});
