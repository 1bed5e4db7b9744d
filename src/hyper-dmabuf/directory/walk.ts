/**
 * What both directory formats share: the incremental reader interface and
 * the checks every decoded page goes through.
 *
 * A reader learns which directory pages to fetch only from pages it already
 * read (the top page names the second level; a linked page names the next),
 * so decoding is a walk: ask for `wanted`, supply those pages, repeat until
 * `done`. Everything the walk asks for at once can be mapped in one batch.
 * The walk is pure (no memory, no I/O), so it is unit-tested with plain
 * Uint32Arrays, and it trusts nothing it reads: every reference is checked
 * before it is used or asked for.
 */
import { ProtocolError } from '../../../protocol/errors.ts';
import { DIR_REFS_PER_PAGE } from '../../../protocol/messages/dmabuf.ts';

/** An incremental directory decoder. */
export interface DirectoryWalk {
  /** Refs of the directory pages to read next, in order; empty once done. */
  readonly wanted: readonly number[];
  /** True once every data ref is known. */
  readonly done: boolean;
  /** Supplies the pages for `wanted`, same order, each DIR_REFS_PER_PAGE words. Throws ERR_BAD_DIRECTORY. */
  supply(pages: readonly Uint32Array[]): void;
  /** The data refs, in buffer order; only once done. */
  result(): Uint32Array;
  /** Every directory ref read so far, in order. */
  readonly dirRefs: readonly number[];
}

/** Throws ERR_BAD_DIRECTORY. */
export function badDirectory(message: string): never {
  throw new ProtocolError('ERR_BAD_DIRECTORY', message);
}

/** Checks a supplied page's length. */
export function checkPage(page: Uint32Array | undefined, what: string): Uint32Array {
  if (!page || page.length !== DIR_REFS_PER_PAGE) badDirectory(`${what}: expected a page of ${DIR_REFS_PER_PAGE} refs, got ${page?.length ?? 'none'}`);
  return page;
}

/**
 * Copies `count` refs from `page` starting at word `from` into `out` at
 * `at`, refusing ref 0 (reserved: never a valid grant), and checks that the
 * rest of the page after them is zero (unused slots are reserved and MUST be
 * 0, so a page cannot smuggle anything).
 */
export function takeRefs(page: Uint32Array, from: number, count: number, out: Uint32Array, at: number, what: string): void {
  // Typed-array builtins (a search, a copy, a byte compare), not per-word JS: a decoder that runs a
  // few times per import costs microseconds per page this way even before the JIT has warmed up.
  const refs = page.subarray(from, from + count);
  const zero = refs.indexOf(0);
  if (zero >= 0) badDirectory(`${what}: slot ${from + zero} holds reference 0 (reserved) where a reference is required`);
  out.set(refs, at);
  const rest = from + count;
  if (rest < page.length && !allZero(page.subarray(rest))) {
    for (let i = rest; i < page.length; i++) {
      if (page[i] !== 0) badDirectory(`${what}: unused slot ${i} holds ${page[i]} (unused slots must be 0)`);
    }
  }
}

const ZERO_BYTES = Buffer.alloc(DIR_REFS_PER_PAGE * 4);

/** True if every word is 0: one memcmp against zeros (at most a page of words). */
function allZero(words: Uint32Array): boolean {
  const bytes = Buffer.from(words.buffer, words.byteOffset, words.byteLength);
  return bytes.equals(ZERO_BYTES.subarray(0, words.byteLength));
}

/** Throws ERR_BAD_DIRECTORY if `ref` was already read as a directory page (a loop or a shared page). */
export function checkFresh(ref: number, seen: Set<number>, what: string): void {
  if (ref === 0) badDirectory(`${what}: reference 0 (reserved) names a directory page`);
  if (seen.has(ref)) badDirectory(`${what}: directory page ${ref} appears twice (loop)`);
  seen.add(ref);
}

/** Checks a page count against a format's limit; ERR_BUFFER_TOO_LARGE past it. */
export function checkPageCount(nPages: number, maxPages: number, format: string): void {
  if (!Number.isInteger(nPages) || nPages < 1) throw new ProtocolError('ERR_BAD_ARGUMENT', `a buffer has at least one page, not ${nPages}`);
  if (nPages > maxPages) {
    throw new ProtocolError('ERR_BUFFER_TOO_LARGE', `${nPages} pages exceed the ${format} directory's limit of ${maxPages} pages (${maxPages / 256} MiB)`);
  }
}
