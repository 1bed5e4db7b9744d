/**
 * The one frame pattern and checksum of every workload that streams frames
 * or fills pages, so a reader can tell a whole frame from a torn, stale,
 * shifted or corrupted one without the bytes ever travelling in a message.
 *
 * Everything is drawn from one deterministic sequence S (xorshift32, the
 * sequence of SPEC.md Appendix A.1), identical in every process, as windows
 * starting at an offset derived from a key (a frame number, or a seed and a
 * page index). Drawing is one copy from S and a check one compare, so a
 * megabyte frame costs about a millisecond each way.
 *
 * Three shapes over that sequence:
 * - the stamped frame of SPEC.md Appendix A.1 (the simulator's render and
 *   compositor programs: `SIM_FRAME_HANDOFF`'s `check`);
 * - the checked frame (the fence and move streams): a header of magic,
 *   frame number, FNV-1a checksum of the payload and flags, then the
 *   payload; the writer stores the payload first and the header last;
 * - page fills (the kernel-level grant scenarios): page k of a buffer with
 *   seed s.
 * FNV-1a (32-bit, over 32-bit words) is the one checksum and digest.
 */
import { PAGE_SIZE } from '../protocol/limits.ts';
import type { FrameCheck } from '../protocol/messages/sim.ts';

// ---------------------------------------------------------------- FNV-1a

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a over `words[from..to)`, continuing from hash `h` (default: a fresh hash). */
export function fnv1a(words: ArrayLike<number>, from = 0, to = words.length, h = FNV_OFFSET): number {
  for (let i = from; i < to; i++) h = Math.imul(h ^ words[i]!, FNV_PRIME);
  return h >>> 0;
}

/** A hash as 8 hex digits. */
export function hex32(h: number): string {
  return (h >>> 0).toString(16).padStart(8, '0');
}

/** A running FNV-1a of a sequence of numbers (e.g. every frame's checksum, in order). */
export class Digest {
  #h = FNV_OFFSET;

  /** Adds one 32-bit value. */
  add(word: number): void {
    this.#h = Math.imul(this.#h ^ word, FNV_PRIME);
  }

  /** The digest so far, as 8 hex digits. */
  hex(): string {
    return hex32(this.#h);
  }
}

// ---------------------------------------------------------------- the sequence S

/** Window offsets cycle through this many words (a prime). */
const SPAN = 65_521;
let sequence = new Int32Array(0);

/** S, at least `words` long (grown on demand; xorshift32 from 0x2545f491, S[0] after one step). */
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

/** Where the window of key `key` starts in S. */
function offsetOf(key: number): number {
  return (Math.imul(key, 7919) >>> 0) % SPAN;
}

/** S[offset .. offset + length) as unsigned words. */
function window32(offset: number, length: number): Uint32Array {
  const s = sequenceOf(offset + length);
  return new Uint32Array(s.buffer, s.byteOffset + offset * 4, length);
}

function bytesOf(words: Uint32Array | Int32Array): Buffer {
  return Buffer.from(words.buffer, words.byteOffset, words.byteLength);
}

/** The whole 32-bit words of a byte view (which must start 4-byte aligned). */
export function wordsOf(bytes: Uint8Array): Uint32Array {
  if (bytes.byteOffset % 4 !== 0) throw Object.assign(new RangeError('a frame buffer must start on a 4-byte boundary'), { code: 'ERR_BAD_ARGUMENT' });
  return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
}

// ---------------------------------------------------------------- stamped frames (SPEC.md A.1)

/** A stamp word (middle and last): a hash of the frame and the position, no sequence needed. */
function stampWord(frame: number, i: number): number {
  let h = Math.imul(frame ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca6b);
  h ^= h >>> 15;
  return Math.imul(h, 0xc2b2ae35) | 0;
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

/** Draws stamped frame f: every word ('full') or the stamp words only ('stamp'). Returns bytes written. */
export function drawStampedFrame(words: Uint32Array, frame: number, mode: 'full' | 'stamp'): number {
  const n = words.length;
  if (n === 0) return 0;
  const idx = stampIndices(n);
  if (mode === 'full') words.set(window32(offsetOf(frame), n));
  for (const i of idx) words[i] = stampValue(frame, i);
  return mode === 'full' ? n * 4 : idx.length * 4;
}

/** The outcome of checking a stamped frame. */
export interface StampedCheckResult {
  ok: boolean;
  checkedBytes: number;
  /** Byte offset of the first bad word, or -1. */
  badOffset: number;
}

/** Checks stamped frame f as `mode` asks ('none' checks nothing and is always ok). */
export function checkStampedFrame(words: Uint32Array, frame: number, mode: FrameCheck): StampedCheckResult {
  const n = words.length;
  if (mode === 'none' || n === 0) return { ok: true, checkedBytes: 0, badOffset: -1 };
  const idx = stampIndices(n);
  const badStamp = idx.find((i) => (words[i]! | 0) !== stampValue(frame, i));
  if (mode === 'stamp' || badStamp !== undefined) {
    return { ok: badStamp === undefined, checkedBytes: idx.length * 4, badOffset: badStamp === undefined ? -1 : badStamp * 4 };
  }
  // Between the stamp words: one compare per range against the sequence window.
  const expected = window32(offsetOf(frame), n);
  const sorted = [...idx].sort((a, b) => a - b);
  for (let r = 0; r < sorted.length; r++) {
    const from = sorted[r]! + 1;
    const to = r + 1 < sorted.length ? sorted[r + 1]! : n;
    if (from >= to) continue;
    const got = words.subarray(from, to);
    const want = expected.subarray(from, to);
    if (bytesOf(got).equals(bytesOf(want))) continue;
    for (let i = 0; i < got.length; i++) if (got[i] !== want[i]) return { ok: false, checkedBytes: (from + i + 1) * 4, badOffset: (from + i) * 4 };
  }
  return { ok: true, checkedBytes: n * 4, badOffset: -1 };
}

// ---------------------------------------------------------------- checked frames

/** Marks a written frame header ("FRM1"). */
export const FRAME_MAGIC = 0x314d5246;
/** Header words before the payload: magic, frame number, checksum, flags. */
export const FRAME_HEADER_WORDS = 4;
/** Flag of the last frame of a stream. */
export const FRAME_LAST = 1;

/** What a reader found in a buffer. */
export interface FrameVerdict {
  ok: boolean;
  /** Frame number in the header (-1: nothing readable). */
  frame: number;
  /** FNV-1a of the payload as read. */
  checksum: number;
  /** The header says this is the last frame of the stream. */
  last: boolean;
  /**
   * Why not ok: 'detached' (the view was taken away by a move or release),
   * 'stale' (no header, or another frame's), 'torn' (the payload does not
   * match its header's checksum: part old, part new), 'corrupt' (header and
   * checksum agree, the content is not the frame's).
   */
  problem?: 'detached' | 'stale' | 'torn' | 'corrupt';
}

function checkedWords(words: Uint32Array): void {
  if (words.length <= FRAME_HEADER_WORDS) throw Object.assign(new RangeError(`a frame buffer needs more than ${FRAME_HEADER_WORDS * 4} bytes`), { code: 'ERR_BAD_ARGUMENT' });
}

/** Writes checked frame `frame` into `words`: payload, then header (magic last). Returns the payload's checksum. */
export function writeFrame(words: Uint32Array, frame: number, last = false): number {
  checkedWords(words);
  const payload = words.subarray(FRAME_HEADER_WORDS);
  payload.set(window32(offsetOf(frame), payload.length));
  const sum = fnv1a(payload);
  words[3] = last ? FRAME_LAST : 0;
  words[2] = sum;
  words[1] = frame >>> 0;
  words[0] = FRAME_MAGIC;
  return sum;
}

/** Checks that `words` holds exactly checked frame `frame` (header, checksum over what was read, every payload word). */
export function checkFrame(words: Uint32Array, frame: number): FrameVerdict {
  if (words.length === 0) return { ok: false, frame: -1, checksum: 0, last: false, problem: 'detached' };
  checkedWords(words);
  const headerFrame = words[1]!;
  const last = (words[3]! & FRAME_LAST) !== 0;
  const payload = words.subarray(FRAME_HEADER_WORDS);
  const checksum = fnv1a(payload);
  const seen = { frame: headerFrame, checksum, last };
  if (words[0] !== FRAME_MAGIC || headerFrame !== frame >>> 0) return { ok: false, ...seen, problem: 'stale' };
  if (checksum !== words[2]) return { ok: false, ...seen, problem: 'torn' };
  if (!bytesOf(payload).equals(bytesOf(window32(offsetOf(frame), payload.length)))) return { ok: false, ...seen, problem: 'corrupt' };
  return { ok: true, ...seen };
}

// ---------------------------------------------------------------- page fills

const PAGE_WORDS = PAGE_SIZE / 4;

// Page k of seed s: a window of S; 4099 is coprime to SPAN, so the pages of one seed differ up to 65,521 pages.
function pageOffset(seed: number, k: number): number {
  return (offsetOf(seed) + (k % SPAN) * 4099) % SPAN;
}

/** Fills one page (1024 words) with the pattern of page k of seed `seed`. */
export function fillPage(words: Uint32Array, seed: number, k: number): void {
  words.set(window32(pageOffset(seed, k), PAGE_WORDS));
}

/** True if the page holds the pattern of page k of seed `seed`. */
export function checkPage(words: Uint32Array, seed: number, k: number): boolean {
  return bytesOf(words.subarray(0, PAGE_WORDS)).equals(bytesOf(window32(pageOffset(seed, k), PAGE_WORDS)));
}

/** Words of page k of a contiguous view. */
export function pageWords(view: ArrayBuffer, k: number): Uint32Array {
  return new Uint32Array(view, k * PAGE_SIZE, PAGE_WORDS);
}

/** FNV-1a over the words of a list of pages; hex. */
export function checksumPages(pages: Iterable<Uint32Array>): string {
  let h = FNV_OFFSET;
  for (const words of pages) h = fnv1a(words, 0, words.length, h);
  return hex32(h);
}
