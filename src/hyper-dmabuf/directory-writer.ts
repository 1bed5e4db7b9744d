/**
 * Exporter side of a gref directory: allocates directory pages from the
 * guest's RAM, grants them READ-ONLY to the importer, and writes the encoded
 * directory into them. The first ref is the one EXPORT carries.
 */
import type { DirFormat } from '../../protocol/messages/dmabuf.ts';
import type { GuestGrantTable } from '../guest/grant-table.ts';
import type { GuestRam } from '../guest/guest-ram.ts';
import type { PageAllocator } from '../guest/page-allocator.ts';
import { directoryPageCount, encodeDirectory } from './directory/index.ts';
import { writeWordsLE } from './directory/le-words.ts';

/** What the writer needs of the guest kernel. */
export interface DirectoryHost {
  readonly ram: GuestRam;
  readonly allocator: PageAllocator;
  readonly grants: GuestGrantTable;
}

/** A directory written and granted. */
export interface GrantedDirectory {
  readonly format: DirFormat;
  /** Refs of the directory pages; refs[0] travels in EXPORT. */
  readonly refs: Uint32Array;
  /** Frames holding them, same order. */
  readonly frames: Uint32Array;
}

/**
 * Writes the directory of `dataRefs` for `importer`. All-or-nothing: on a
 * failure nothing stays allocated or granted. The pages are granted before
 * they are written (their refs are part of the content), which is harmless:
 * the importer learns the first ref only from EXPORT, sent afterwards.
 */
export async function writeDirectory(host: DirectoryHost, importer: number, format: DirFormat, dataRefs: Uint32Array): Promise<GrantedDirectory> {
  const nPages = directoryPageCount(format, dataRefs.length);
  const frames = host.allocator.alloc(nPages);
  let refs: Uint32Array;
  try {
    refs = await host.grants.grantAccessMany(importer, frames, true);
  } catch (e) {
    host.allocator.free(frames);
    throw e;
  }
  const pages = encodeDirectory(format, dataRefs, refs);
  for (let k = 0; k < pages.length; k++) writeWordsLE(pages[k]!, host.ram.page(frames[k]!));
  return { format, refs, frames };
}
