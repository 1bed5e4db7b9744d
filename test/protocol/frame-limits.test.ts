import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame, MAX_CAPS, MAX_HELLO_FRAME_BYTES, MAX_VERSION, messages } from '../../protocol/index.ts';
import { STRUCTURE_LIMITS } from '../../protocol/frame-limits.ts';
import { decodePlainMsgpack, WireFloat } from '../../protocol/plain-msgpack.ts';
import { readEnvelopeHead } from '../../protocol/readable-head.ts';

describe('frame limits (SPEC 3.3, 3.4)', () => {
  it('the largest HELLO the declaration allows fits in MAX_HELLO_FRAME_BYTES, in every version', () => {
    for (let v = 1; v <= MAX_VERSION; v++) {
      const bytes = encodeFrame({
        v, kind: 'req', type: 'HELLO', id: 0xffffffff, src: 0x7fef, dst: 0x7fef,
        body: { minVersion: 0xffff, maxVersion: 0xffff, domid: 0x7fef, token: '\u{8000}'.repeat(128), caps: Array.from({ length: MAX_CAPS }, () => 'c'.repeat(64)) },
      });
      expect(bytes.length).toBeLessThanOrEqual(MAX_HELLO_FRAME_BYTES);
    }
  });

  it('the structure limits are those of the declarations: 65,536 elements, the largest declared map, the values of a full GNTTAB_COPY', () => {
    expect(STRUCTURE_LIMITS.maxArray).toBe(65_536);
    const fieldCounts = [...messages.values()].flatMap((d) => (d.kind === 'request' ? [d.request, d.response] : [d.body])).map((f) => Object.keys(f).length);
    expect(STRUCTURE_LIMITS.maxMap).toBeGreaterThanOrEqual(Math.max(7, ...fieldCounts));
    const ops = Array.from({ length: 65_536 }, () => ({ source: { ref: 1, dom: 1, offset: 0 }, dest: { ref: 1, dom: 1, offset: 0 }, len: 1, flags: 0 }));
    expect(decodeFrame(encodeFrame({ v: 1, kind: 'req', type: 'GNTTAB_COPY', id: 1, src: 1, dst: 1, body: { ops } })).ok).toBe(true);
  });

  it('an array or map count beyond the limits is refused from its header, whatever follows', () => {
    const limits = { maxArray: 4, maxMap: 2, maxItems: 10 };
    // A 4-billion-element array header with no elements: refused for its count, not for truncation.
    expect(() => decodePlainMsgpack(Uint8Array.from([0x81, 0xa1, 0x61, 0xdd, 0xff, 0xff, 0xff, 0xff]), limits)).toThrow(/exceeds 4/);
    expect(() => decodePlainMsgpack(Uint8Array.from([0x83, 0xa1, 0x61, 1, 0xa1, 0x62, 2, 0xa1, 0x63, 3]), limits)).toThrow(/map of 3 entries exceeds 2/);
    expect(() => decodePlainMsgpack(Uint8Array.from([0x82, 0xa1, 0x61, 0x94, 1, 2, 3, 4, 0xa1, 0x62, 0x94, 1, 2, 3, 4]), limits)).toThrow(/more than 10 values/);
  });

  it('keeps floats apart from integers, big integers exact, and every key as sent', () => {
    const bytes = Uint8Array.from([0x84,
      0xa1, 0x66, 0xcb, 0x40, 0x1c, 0, 0, 0, 0, 0, 0, // f: float64 7.0
      0xa1, 0x67, 0xca, 0x40, 0, 0, 0, // g: float32 2.0
      0xa1, 0x62, 0xcf, 0, 0x20, 0, 0, 0, 0, 0, 1, // b: 2^53 + 1
      0xa9, ...Buffer.from('__proto__'), 1]);
    const m = decodePlainMsgpack(bytes, STRUCTURE_LIMITS);
    expect(m.f).toEqual(new WireFloat(7));
    expect(m.g).toEqual(new WireFloat(2));
    expect(m.b).toBe(2n ** 53n + 1n);
    expect(Object.getPrototypeOf(m)).toBe(Object.prototype);
    expect(Object.keys(m)).toEqual(['f', 'g', 'b', '__proto__']);
    expect(Object.getOwnPropertyDescriptor(m, '__proto__')?.value).toBe(1);
  });

  it('the readable-id walk stops at a count beyond the limits and keeps what it read', () => {
    const head = [0x85, 0xa1, 0x76, 1, 0xa4, ...Buffer.from('kind'), 0xa3, ...Buffer.from('req'), 0xa4, ...Buffer.from('type'), 0xa4, ...Buffer.from('PING'), 0xa2, 0x69, 0x64, 7];
    const frame = Uint8Array.from([...head, 0xa4, ...Buffer.from('body'), 0xdd, 0x01, 0, 0, 0, ...new Array(64).fill(0)]);
    expect(readEnvelopeHead(frame)).toEqual({ v: 1, kind: 'req', type: 'PING', id: 7 });
  });
});
