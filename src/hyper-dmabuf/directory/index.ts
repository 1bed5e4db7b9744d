/**
 * Gref directories: one grant reference that describes a buffer of N pages,
 * in either of two formats (SPEC.md 10.3). Pure functions over page-sized
 * Uint32Arrays; writing them into granted pages and mapping them is the
 * driver's job (directory-writer.ts, directory-reader.ts).
 */
import type { DirFormat } from '../../../protocol/messages/dmabuf.ts';
import { encodeLinked, LINKED_MAX_PAGES, LinkedWalk, linkedPageCount } from './linked.ts';
import { encodeMultilevel, MULTILEVEL_MAX_PAGES, MultilevelWalk, multilevelPageCount } from './multilevel.ts';
import type { DirectoryWalk } from './walk.ts';

export type { DirectoryWalk } from './walk.ts';
export { encodeLinked, LINKED_MAX_PAGES, LinkedWalk, linkedPageCount } from './linked.ts';
export { encodeMultilevel, MULTILEVEL_MAX_PAGES, MultilevelWalk, multilevelPageCount } from './multilevel.ts';

/** Largest buffer, in pages, a format describes. */
export function formatMaxPages(format: DirFormat): number {
  return format === 'multilevel' ? MULTILEVEL_MAX_PAGES : LINKED_MAX_PAGES;
}

/** Directory pages needed for nPages; ERR_BUFFER_TOO_LARGE past the format's limit. */
export function directoryPageCount(format: DirFormat, nPages: number): number {
  return format === 'multilevel' ? multilevelPageCount(nPages) : linkedPageCount(nPages);
}

/** Page contents of the directory, pages[k] for the page granted as dirRefs[k]; dirRefs[0] is the ref that travels in EXPORT. */
export function encodeDirectory(format: DirFormat, dataRefs: ArrayLike<number>, dirRefs: ArrayLike<number>): Uint32Array[] {
  return format === 'multilevel' ? encodeMultilevel(dataRefs, dirRefs) : encodeLinked(dataRefs, dirRefs);
}

/** Starts an incremental decode from the ref that travelled in EXPORT. */
export function walkDirectory(format: DirFormat, dirRef: number, nPages: number): DirectoryWalk {
  return format === 'multilevel' ? new MultilevelWalk(dirRef, nPages) : new LinkedWalk(dirRef, nPages);
}

/**
 * Decodes a whole directory with a synchronous page reader (tests, tools).
 * `read(ref)` returns the page granted as ref. Returns the data refs.
 */
export function decodeDirectory(format: DirFormat, dirRef: number, nPages: number, read: (ref: number) => Uint32Array): Uint32Array {
  const walk = walkDirectory(format, dirRef, nPages);
  while (!walk.done) walk.supply(walk.wanted.map(read));
  return walk.result();
}
