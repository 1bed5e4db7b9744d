/**
 * Directory pages are little-endian arrays of 32-bit refs (SPEC.md 10.3),
 * whatever the host. On a little-endian host (every platform Node ships for
 * today) a Uint32Array over the bytes is exactly that; elsewhere the words
 * are converted one by one.
 */
import { endianness } from 'node:os';
import { PAGE_SIZE } from '../../../protocol/limits.ts';

const LITTLE = endianness() === 'LE';

/** Writes one page of words into `page` (4096 bytes) as little-endian u32s. */
export function writeWordsLE(words: Uint32Array, page: Uint8Array): void {
  if (page.byteLength !== PAGE_SIZE || words.length * 4 !== PAGE_SIZE) throw new RangeError('a directory page is 1024 words in 4096 bytes');
  if (LITTLE) {
    page.set(new Uint8Array(words.buffer, words.byteOffset, PAGE_SIZE));
    return;
  }
  const dv = new DataView(page.buffer, page.byteOffset, PAGE_SIZE);
  for (let i = 0; i < words.length; i++) dv.setUint32(i * 4, words[i]!, true);
}

/** Reads a page (4096 bytes) as little-endian u32s, into a private copy. */
export function readWordsLE(page: Uint8Array): Uint32Array {
  if (page.byteLength !== PAGE_SIZE) throw new RangeError('a directory page is 4096 bytes');
  // A copy: the page is shared memory the exporter can change; we validate what we copied (XSA-155).
  const copy = page.slice();
  const words = new Uint32Array(copy.buffer, 0, PAGE_SIZE / 4);
  if (LITTLE) return words;
  const dv = new DataView(copy.buffer);
  for (let i = 0; i < words.length; i++) words[i] = dv.getUint32(i * 4, true);
  return words;
}
