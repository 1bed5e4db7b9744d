/**
 * Importer side of a gref directory: walks it through the foreign mapper.
 * Each round maps every directory page the walk wants in ONE batched map
 * (multilevel: the top page, then all second-level pages; linked: one page
 * per round, since each names the next), copies the pages, unmaps them at
 * once, and validates the copies. Only the data pages stay mapped later.
 */
import { PAGE_SIZE } from '../../protocol/limits.ts';
import type { DirFormat } from '../../protocol/messages/dmabuf.ts';
import type { ForeignMapper } from '../guest/foreign-mapper.ts';
import { walkDirectory } from './directory/index.ts';
import { readWordsLE } from './directory/le-words.ts';

/** What a directory read found. */
export interface DirectoryRead {
  /** Data refs in buffer order. */
  readonly dataRefs: Uint32Array;
  /** Directory pages read. */
  readonly dirPages: number;
  /** Batched map round trips it took. */
  readonly rounds: number;
}

/** Reads the directory that `dirRef` of domain `dom` heads. Throws ERR_BAD_DIRECTORY or the mapper's error. */
export async function readDirectory(mapper: ForeignMapper, dom: number, format: DirFormat, dirRef: number, nPages: number): Promise<DirectoryRead> {
  const walk = walkDirectory(format, dirRef, nPages);
  let rounds = 0;
  while (!walk.done) {
    const mapping = await mapper.mapGrants(dom, walk.wanted, { readonly: true });
    rounds++;
    let pages: Uint32Array[];
    try {
      const bytes = new Uint8Array(mapping.view);
      pages = walk.wanted.map((_, i) => readWordsLE(bytes.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE)));
    } finally {
      await mapping.unmap();
    }
    walk.supply(pages);
  }
  return { dataRefs: walk.result(), dirPages: walk.dirRefs.length, rounds };
}
