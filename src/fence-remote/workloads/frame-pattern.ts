/**
 * Content of a streamed frame, so a reader can tell a whole frame from a
 * torn one (part old, part new) or a stale one (a whole earlier frame):
 *
 *   word 0: frame number, word 1: checksum of the payload, word 2: magic,
 *   word 3: 0, words 4..: payload derived from the frame number.
 *
 * The writer stores the payload first and the header last; the reader
 * checks the frame number, that the payload's checksum matches the header,
 * and that it matches the checksum the frame number implies.
 */

/** Marks a written frame header ("FRM1"). */
export const FRAME_MAGIC = 0x314d5246;
const HEADER_WORDS = 4;

function payloadWord(frame: number, w: number): number {
  return (Math.imul(frame + 1, 0x9e3779b1) ^ Math.imul(w, 0x01000193)) >>> 0;
}

/** FNV-1a over 32-bit words. */
export function checksumWords(words: Uint32Array, from = 0): number {
  let h = 0x811c9dc5;
  for (let i = from; i < words.length; i++) h = Math.imul(h ^ words[i]!, 0x01000193);
  return h >>> 0;
}

/** Checksum the payload of frame `frame` has in a buffer of `words` words. */
export function expectedChecksum(frame: number, words: number): number {
  let h = 0x811c9dc5;
  for (let w = HEADER_WORDS; w < words; w++) h = Math.imul(h ^ payloadWord(frame, w), 0x01000193);
  return h >>> 0;
}

/** Writes frame `frame` into `words`: payload, then header. Returns the checksum. */
export function writeFrame(words: Uint32Array, frame: number): number {
  let h = 0x811c9dc5;
  for (let w = HEADER_WORDS; w < words.length; w++) {
    const v = payloadWord(frame, w);
    words[w] = v;
    h = Math.imul(h ^ v, 0x01000193);
  }
  const sum = h >>> 0;
  words[3] = 0;
  words[2] = FRAME_MAGIC;
  words[1] = sum;
  words[0] = frame >>> 0;
  return sum;
}

/** What a reader found in a buffer. */
export interface FrameCheck {
  ok: boolean;
  /** Frame number in the header. */
  frame: number;
  /** Checksum of the payload as read. */
  checksum: number;
  /** Why not ok: 'stale' (another frame), 'torn' (payload does not match its header), 'corrupt' (header matches, content does not). */
  problem?: 'stale' | 'torn' | 'corrupt';
}

/**
 * Checks that `words` holds exactly frame `frame`. `expected` is the
 * checksum of that frame (expectedChecksum), computed once per frame size.
 */
export function checkFrame(words: Uint32Array, frame: number, expected: number): FrameCheck {
  const headerFrame = words[0]!;
  const headerSum = words[1]!;
  const checksum = checksumWords(words, HEADER_WORDS);
  if (headerFrame !== frame >>> 0 || words[2] !== FRAME_MAGIC) return { ok: false, frame: headerFrame, checksum, problem: 'stale' };
  if (checksum !== headerSum) return { ok: false, frame: headerFrame, checksum, problem: 'torn' };
  if (checksum !== expected) return { ok: false, frame: headerFrame, checksum, problem: 'corrupt' };
  return { ok: true, frame: headerFrame, checksum };
}
