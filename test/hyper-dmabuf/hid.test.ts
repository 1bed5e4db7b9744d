/** Buffer ids: format, fresh keys, reuse only after release, no 1000 cap, parsing. */
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame } from '../../protocol/codec.ts';
import { copyHid, formatHid, HidAllocator, hidKey, parseHid, sameHid } from '../../src/hyper-dmabuf/hid.ts';

describe('HidAllocator', () => {
  it('gives 16-byte random keys, a 16-bit domain and distinct counters', () => {
    const ids = new HidAllocator(0x7fef);
    const a = ids.allocate();
    const b = ids.allocate();
    expect(a.dom).toBe(0x7fef);
    expect(a.key.byteLength).toBe(16);
    expect(a.cnt).not.toBe(b.cnt);
    expect(Buffer.from(a.key).equals(Buffer.from(b.key))).toBe(false);
  });

  it('holds at least 65,536 live ids (the original stopped at 1000), all distinct', () => {
    const ids = new HidAllocator(1);
    const seen = new Set<string>();
    for (let i = 0; i < 70_000; i++) seen.add(hidKey(ids.allocate()));
    expect(seen.size).toBe(70_000);
    expect(ids.live).toBe(70_000);
  });

  it('reuses a counter only after release, always with a new key', () => {
    const ids = new HidAllocator(3);
    const a = ids.allocate();
    const b = ids.allocate();
    ids.release(a);
    const c = ids.allocate();
    expect(c.cnt).toBe(a.cnt);
    expect(sameHid(a, c)).toBe(false);
    expect(hidKey(a)).not.toBe(hidKey(c));
    expect(ids.allocate().cnt).not.toBe(b.cnt);
  });

  it('refuses past maxLive with ERR_LIMIT and refuses releasing a dead id', () => {
    const ids = new HidAllocator(2, 2);
    const a = ids.allocate();
    ids.allocate();
    expect(() => ids.allocate()).toThrow(expect.objectContaining({ code: 'ERR_LIMIT' }));
    ids.release(a);
    expect(() => ids.release(a)).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }));
    expect(() => ids.release({ ...ids.allocate(), dom: 9 })).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }));
  });
});

describe('hid helpers', () => {
  it('round-trip through the text form and compare counter and key', () => {
    const hid = new HidAllocator(12).allocate();
    const parsed = parseHid(hidKey(hid));
    expect(sameHid(parsed, hid)).toBe(true);
    expect(sameHid({ ...parsed, key: Uint8Array.from(parsed.key).fill(1, 0, 1) }, hid)).toBe(hid.key[0] === 1);
    expect(formatHid(hid)).toMatch(/^hid\{d12 #\d+ [0-9a-f]{8}…\}$/);
    expect(() => parseHid('12:1:abcd')).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }));
    expect(() => parseHid(`40000:1:${'0'.repeat(32)}`)).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }));
  });

  it('copyHid detaches the key from the decoded frame', () => {
    const hid = new HidAllocator(1).allocate();
    const copy = copyHid(hid);
    hid.key.fill(0);
    expect(copy.key.some((b) => b !== 0)).toBe(true);
  });

  it('the wire accepts exactly 16 key bytes', () => {
    const hid = new HidAllocator(1).allocate();
    const frame = (key: Uint8Array) => ({ v: 1, kind: 'req' as const, type: 'DMABUF_EXPORT_FD', id: 3, src: 2, dst: 1, body: { hid: { ...hid, key }, fdId: 1 } });
    const ok = decodeFrame(encodeFrame(frame(hid.key)));
    expect(ok.ok).toBe(true);
    expect(() => encodeFrame(frame(hid.key.subarray(0, 15)))).toThrow(expect.objectContaining({ code: 'ERR_FIELD_RANGE' }));
    expect(() => encodeFrame(frame(new Uint8Array(17)))).toThrow(expect.objectContaining({ code: 'ERR_FIELD_RANGE' }));
  });
});
