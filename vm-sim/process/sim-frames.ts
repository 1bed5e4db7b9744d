/**
 * The frame pattern of the simulator's render and compositor programs, and
 * the private data that describes a framebuffer.
 *
 * Frame f of a buffer of n words: word 0 holds f itself, the middle and the
 * last word a hash of f and their position (the "stamp"), and every other
 * word a window of a fixed pseudo-random sequence S starting at an offset
 * that depends on f. Every word of a frame differs from the same word of
 * the previous frame, and a buffer shifted, truncated or left over from
 * another frame is caught. Drawing is one memcpy from S and a full check a
 * memcmp per range between stamp words (native), so a 1080p frame costs
 * about a millisecond each way instead of tens in a JavaScript loop; S is
 * generated once per process, identically in every process, and only for
 * full frames: a stamp costs the same at any size. The compositor checks
 * the pixels through its mapping of the render VM's pages, never a copy.
 */
import type { FrameCheck } from '../../protocol/messages/sim.ts';

/** Offsets of the window cycle through this many words (a prime). */
const SPAN = 65_521;
let sequence = new Int32Array(0);

/** S, at least `words` long (grown on demand; deterministic xorshift32). */
function sequenceOf(words: number): Int32Array {
  if (sequence.length >= words) return sequence;
  const next = new Int32Array(Math.max(words, sequence.length * 2, 1 << 16));
  let x = 0x2545f491;
  for (let i = 0; i < next.length; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    next[i] = x;
  }
  sequence = next;
  return next;
}

function offsetOf(frame: number): number {
  return (Math.imul(frame, 7919) >>> 0) % SPAN;
}

/** A stamp word (middle and last): a hash of the frame and the position, no sequence needed. */
function stampWord(frame: number, i: number): number {
  let h = Math.imul(frame ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca6b);
  h ^= h >>> 15;
  return Math.imul(h, 0xc2b2ae35) | 0;
}

/** The value of word i of frame f in a buffer of nWords words. */
export function frameWord(frame: number, i: number, nWords: number): number {
  if (i === 0) return frame | 0;
  if (stampIndices(nWords).includes(i)) return stampWord(frame, i);
  return sequenceOf(nWords + SPAN)[offsetOf(frame) + i]!;
}

/** The whole words of a byte view, as Int32 (the view must start 4-byte aligned). */
export function wordsOf(bytes: Uint8Array): Int32Array {
  return new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
}

/**
 * Word indices of the stamp: first (the frame number), middle, last. They
 * hold their own values (not the sequence's), so that drawing and checking
 * a stamp costs the same whatever the buffer's size.
 */
export function stampIndices(nWords: number): number[] {
  return nWords === 0 ? [] : [...new Set([0, nWords >>> 1, nWords - 1])];
}

function stampValue(frame: number, i: number): number {
  return i === 0 ? frame | 0 : stampWord(frame, i);
}

/** Draws frame f: every word ('full') or the stamp words only ('stamp'). Returns bytes written. */
export function drawFrame(words: Int32Array, frame: number, mode: 'full' | 'stamp'): number {
  const n = words.length;
  if (n === 0) return 0;
  const idx = stampIndices(n);
  if (mode === 'full') {
    const s = sequenceOf(n + SPAN);
    const o = offsetOf(frame);
    words.set(s.subarray(o, o + n));
  }
  for (const i of idx) words[i] = stampValue(frame, i);
  return mode === 'full' ? n * 4 : idx.length * 4;
}

/** The outcome of a check. */
export interface FrameCheckResult {
  ok: boolean;
  checkedBytes: number;
  /** Byte offset of the first bad word, or -1. */
  badOffset: number;
}

function bytesOf(words: Int32Array): Buffer {
  return Buffer.from(words.buffer, words.byteOffset, words.byteLength);
}

/** Checks frame f as `mode` asks ('none' checks nothing and is always ok). */
export function checkFrame(words: Int32Array, frame: number, mode: FrameCheck): FrameCheckResult {
  const n = words.length;
  if (mode === 'none' || n === 0) return { ok: true, checkedBytes: 0, badOffset: -1 };
  const idx = stampIndices(n);
  const badStamp = idx.find((i) => words[i] !== stampValue(frame, i));
  if (mode === 'stamp' || badStamp !== undefined) {
    return { ok: badStamp === undefined, checkedBytes: idx.length * 4, badOffset: badStamp === undefined ? -1 : badStamp * 4 };
  }
  // Between the stamp words: one memcmp per range against the sequence window.
  const s = sequenceOf(n + SPAN);
  const o = offsetOf(frame);
  const sorted = [...idx].sort((a, b) => a - b);
  for (let r = 0; r < sorted.length; r++) {
    const from = sorted[r]! + 1;
    const to = r + 1 < sorted.length ? sorted[r + 1]! : n;
    if (from >= to) continue;
    const got = words.subarray(from, to);
    const expected = s.subarray(o + from, o + to);
    if (bytesOf(got).equals(bytesOf(expected))) continue;
    for (let i = 0; i < got.length; i++) if (got[i] !== expected[i]) return { ok: false, checkedBytes: (from + i + 1) * 4, badOffset: (from + i) * 4 };
  }
  return { ok: true, checkedBytes: n * 4, badOffset: -1 };
}

/** What a framebuffer's private data says (the compositor needs it to scan out). */
export interface FramebufferInfo {
  width: number;
  height: number;
  /** Bytes per row. */
  stride: number;
  /** DRM fourcc as text, e.g. "AB24" (DRM_FORMAT_ABGR8888: R, G, B, A bytes in memory = RGBA8888). */
  format: string;
}

/** Named formats and their fourcc and bytes per pixel. */
export const FORMATS: Readonly<Record<string, { fourcc: string; bpp: number }>> = {
  RGBA8888: { fourcc: 'AB24', bpp: 4 },
  BGRA8888: { fourcc: 'AR24', bpp: 4 },
  RGBX8888: { fourcc: 'XB24', bpp: 4 },
};

/** Private data layout: magic "FBv1", width, height, stride (u32 LE), fourcc (4 ASCII bytes): 20 bytes. */
export const FB_PRIV_BYTES = 20;
const FB_MAGIC = 0x31764246; // "FBv1" read as u32 LE

/** Encodes framebuffer info as private data. */
export function encodeFramebufferInfo(info: FramebufferInfo): Uint8Array {
  if (!/^[ -~]{4}$/.test(info.format)) throw Object.assign(new Error(`fourcc ${JSON.stringify(info.format)} must be 4 ASCII characters`), { code: 'ERR_BAD_ARGUMENT' });
  const out = new Uint8Array(FB_PRIV_BYTES);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, FB_MAGIC, true);
  dv.setUint32(4, info.width, true);
  dv.setUint32(8, info.height, true);
  dv.setUint32(12, info.stride, true);
  for (let i = 0; i < 4; i++) out[16 + i] = info.format.charCodeAt(i);
  return out;
}

/** Decodes framebuffer private data; undefined if it is not that layout. */
export function decodeFramebufferInfo(priv: Uint8Array): FramebufferInfo | undefined {
  if (priv.byteLength !== FB_PRIV_BYTES) return undefined;
  const dv = new DataView(priv.buffer, priv.byteOffset, priv.byteLength);
  if (dv.getUint32(0, true) !== FB_MAGIC) return undefined;
  return {
    width: dv.getUint32(4, true), height: dv.getUint32(8, true), stride: dv.getUint32(12, true),
    format: String.fromCharCode(priv[16]!, priv[17]!, priv[18]!, priv[19]!),
  };
}
