/**
 * The one frame pattern of the workloads: checked frames tell whole, torn,
 * stale and corrupted frames apart; stamped frames are SPEC.md Appendix A.1
 * word for word (checked against a direct reading of the appendix); page
 * fills differ per seed and page.
 */
import { describe, expect, it } from 'vitest';
import { checkFrame, checkPage, checkStampedFrame, checksumPages, Digest, drawStampedFrame, fillPage, fnv1a, writeFrame } from '../../workloads/frame-pattern.ts';

describe('checked frames', () => {
  it('tells a whole frame from a torn, a stale and a corrupted one', () => {
    const words = new Uint32Array(1024);
    writeFrame(words, 7);
    expect(checkFrame(words, 7)).toMatchObject({ ok: true, frame: 7, last: false });
    expect(checkFrame(words, 8)).toMatchObject({ ok: false, problem: 'stale' });
    const next = new Uint32Array(1024);
    writeFrame(next, 8);
    words.set(next.subarray(0, 600)); // the writer got halfway: new header, half the new payload
    expect(checkFrame(words, 8)).toMatchObject({ ok: false, problem: 'torn' });
    writeFrame(words, 9, true);
    expect(checkFrame(words, 9)).toMatchObject({ ok: true, last: true });
    words[5]! ^= 1;
    expect(checkFrame(words, 9)).toMatchObject({ ok: false, problem: 'torn' });
    words[2] = fnv1a(words, 4); // a header that agrees with the wrong payload
    expect(checkFrame(words, 9)).toMatchObject({ ok: false, problem: 'corrupt' });
    expect(checkFrame(new Uint32Array(0), 9)).toMatchObject({ ok: false, problem: 'detached' });
  });

  it('returns the checksum the reader sees, so both sides agree on a digest', () => {
    const words = new Uint32Array(300);
    const w = new Digest();
    const r = new Digest();
    for (let f = 0; f < 5; f++) {
      w.add(writeFrame(words, f));
      r.add(checkFrame(words, f).checksum);
    }
    expect(r.hex()).toBe(w.hex());
    expect(w.hex()).toMatch(/^[0-9a-f]{8}$/);
  });
});

// SPEC.md A.1, read literally.
function specWord(f: number, i: number, n: number): number {
  const stamps = new Set([0, n >>> 1, n - 1]);
  if (i === 0) return f | 0;
  if (stamps.has(i)) {
    let h = Math.imul(f ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca6b);
    h ^= h >>> 15;
    return Math.imul(h, 0xc2b2ae35) | 0;
  }
  const o = (Math.imul(f, 7919) >>> 0) % 65521;
  let x = 0x2545f491;
  for (let k = 0; k <= o + i; k++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; }
  return x | 0;
}

describe('stamped frames (SPEC.md A.1)', () => {
  it('draws every word as the appendix says, and checks full, stamp and none', () => {
    const n = 257;
    const words = new Uint32Array(n);
    expect(drawStampedFrame(words, 12345, 'full')).toBe(n * 4);
    for (const i of [0, 1, 2, 100, n >>> 1, 200, n - 2, n - 1]) expect(words[i]! | 0).toBe(specWord(12345, i, n));
    expect(checkStampedFrame(words, 12345, 'full')).toEqual({ ok: true, checkedBytes: n * 4, badOffset: -1 });
    words[100]! ^= 1;
    expect(checkStampedFrame(words, 12345, 'full')).toEqual({ ok: false, checkedBytes: 101 * 4, badOffset: 400 });
    expect(checkStampedFrame(words, 12345, 'stamp')).toEqual({ ok: true, checkedBytes: 12, badOffset: -1 });
    expect(checkStampedFrame(words, 12346, 'stamp')).toMatchObject({ ok: false, badOffset: 0 });
    expect(checkStampedFrame(words, 1, 'none')).toEqual({ ok: true, checkedBytes: 0, badOffset: -1 });
  });
});

describe('page fills', () => {
  it('differ per seed and per page, and are found again', () => {
    const pages = Array.from({ length: 4 }, () => new Uint32Array(1024));
    pages.forEach((p, k) => fillPage(p, 42, k));
    pages.forEach((p, k) => expect(checkPage(p, 42, k)).toBe(true));
    expect(checkPage(pages[1]!, 42, 2)).toBe(false);
    expect(checkPage(pages[1]!, 43, 1)).toBe(false);
    const sum = checksumPages(pages);
    pages[3]![1023]! ^= 1;
    expect(checkPage(pages[3]!, 42, 3)).toBe(false);
    expect(checksumPages(pages)).not.toBe(sum);
  });
});
