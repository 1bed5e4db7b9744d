/**
 * Test patterns for pages: page k of a buffer (its position, not its frame
 * number) with seed s holds a sequence of words that differs per seed, per
 * page and per word. The exporter fills its frames, the importer reads the
 * same pattern through its mapping in ref order, and neither ever sends the
 * bytes in a message.
 */
import { PAGE_SIZE } from '../../protocol/limits.ts';

const WORDS = PAGE_SIZE / 4;

function pageBase(seed: number, k: number): number {
  return Math.imul((seed ^ Math.imul(k + 1, 0x10001)) | 0, 0x9e3779b1);
}

/** Fills one page (1024 words) with the pattern of page k. */
export function fillPage(words: Uint32Array, seed: number, k: number): void {
  const base = pageBase(seed, k);
  for (let w = 0; w < WORDS; w++) words[w] = (base + Math.imul(w, 0x01000193)) >>> 0;
}

/** True if the page holds the pattern of page k. */
export function checkPage(words: Uint32Array, seed: number, k: number): boolean {
  const base = pageBase(seed, k);
  for (let w = 0; w < WORDS; w++) if (words[w] !== (base + Math.imul(w, 0x01000193)) >>> 0) return false;
  return true;
}

/** Words of page k of a contiguous view. */
export function pageWords(view: ArrayBuffer, k: number): Uint32Array {
  return new Uint32Array(view, k * PAGE_SIZE, WORDS);
}

/** Words of a page given as bytes (e.g. a page of guest RAM). */
export function wordsOf(bytes: Uint8Array): Uint32Array {
  return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/** FNV-1a over the words of a list of pages; hex. */
export function checksumPages(pages: Iterable<Uint32Array>): string {
  let h = 0x811c9dc5;
  for (const words of pages) for (let w = 0; w < words.length; w++) h = Math.imul(h ^ words[w]!, 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}
