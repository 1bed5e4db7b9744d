/**
 * GNTTAB_MAP_DIRECTORY (v2, SPEC.md 7.7): the backend reads a hyper_dmabuf
 * gref directory granted to the caller and maps every data page it names,
 * so that an import takes one round trip to the backend whatever the
 * directory format.
 *
 * It does what an importer does in v1, page by page and with the same
 * checks, without the round trips: each directory page is pinned read-only
 * exactly as a map entry (acquireGrant's steps: ref range, pinned-entry
 * record, pin limit, type, grantee, GTF_reading by compare-exchange against
 * a validated copy, frame read once, frame in range), copied once into
 * private memory while pinned (from the backend's mapping of the granter's
 * RAM, Domain.ram, kept until the domain is removed), and unpinned (releaseGrant's
 * steps: busy bits per XSA-230); the addon does these three steps for all
 * pages of a level in one call (grant-native.ts). Only the copy is decoded
 * (XSA-155), with the importer's own directory decoder
 * (src/hyper-dmabuf/directory, pure functions of SPEC.md 10.3). The data
 * refs are then mapped as one GNTTAB_MAP_GRANT_REF batch (grant-map.ts).
 */
import { GNTMAP, GNTST, type RequestOf, type ResponseOf } from '../../protocol/index.ts';
import { DIR_REFS_PER_PAGE } from '../../protocol/messages/dmabuf.ts';
import type { GNTTAB_MAP_DIRECTORY } from '../../protocol/messages/grant.ts';
import { walkDirectory } from '../hyper-dmabuf/directory/index.ts';
import type { HvContext } from './context.ts';
import type { Domain } from './domain.ts';
import { mapBatchStatus, mapInto, mapOutput } from './grant-map.ts';
import { readDirectoryPages } from './grant-native.ts';
import { nsSince } from './grant-stats.ts';

/** The response body. */
export type MapDirectoryResult = ResponseOf<typeof GNTTAB_MAP_DIRECTORY>;

const EMPTY_STATUS = new Int16Array(0);
const EMPTY_U32 = new Uint32Array(0);

function refused(dirRefs: number[], dirStatus: number[], ramPath: string): MapDirectoryResult {
  return {
    dirRefs: Uint32Array.from(dirRefs), dirStatus: Int16Array.from(dirStatus),
    status: EMPTY_STATUS, handle: EMPTY_U32, frame: EMPTY_U32, ramPath,
  };
}

/**
 * Serves GNTTAB_MAP_DIRECTORY for `caller`. Throws ProtocolError
 * ERR_BUFFER_TOO_LARGE (nents over the format's limit) before touching a
 * grant, ERR_BAD_DIRECTORY when a copied page breaks SPEC.md 10.3 (every
 * directory pin is already dropped then, and no data page is mapped).
 */
export async function mapDirectory(ctx: HvContext, caller: Domain, body: RequestOf<typeof GNTTAB_MAP_DIRECTORY>): Promise<MapDirectoryResult> {
  const walk = walkDirectory(body.format, body.dirRef, body.nents);
  const granter = ctx.registry.get(body.dom);
  const batchStatus = mapBatchStatus(granter, body.flags);
  const stats = ctx.grantStats;
  stats.batches++;
  if (batchStatus !== GNTST.okay || !granter) return refused([body.dirRef], [batchStatus], granter?.ramPath ?? '');

  const t0 = process.hrtime.bigint();
  const dirRefs: number[] = [];
  const dirStatus: number[] = [];
  // Mapped once per domain and kept (Domain.ram, which GNTTAB_COPY uses too): an open, a pread per
  // page and a close per request cost more than the whole directory's copies from the mapping.
  const ram = granter.ram(() => ctx.files.open(granter.ramPath));
  try {
    while (!walk.done) {
      const wanted = Uint32Array.from(walk.wanted);
      const words = new Uint32Array(wanted.length * DIR_REFS_PER_PAGE);
      const status = new Int16Array(wanted.length);
      const handled = readDirectoryPages(caller, granter, ram, wanted, words, status);
      for (let k = 0; k < handled; k++) {
        dirRefs.push(wanted[k]!);
        dirStatus.push(status[k]!);
      }
      if (handled < wanted.length || (handled > 0 && status[handled - 1]! < 0)) return refused(dirRefs, dirStatus, granter.ramPath);
      const pages: Uint32Array[] = [];
      for (let k = 0; k < handled; k++) pages.push(words.subarray(k * DIR_REFS_PER_PAGE, (k + 1) * DIR_REFS_PER_PAGE));
      walk.supply(pages);
    }
  } finally {
    stats.dirPages += dirRefs.length;
    stats.dirNs += nsSince(t0);
  }

  const out = mapOutput(body.nents);
  await mapInto(ctx, caller, granter, walk.result(), (body.flags & GNTMAP.readonly) === 0, out);
  return { dirRefs: Uint32Array.from(dirRefs), dirStatus: Int16Array.from(dirStatus), ...out, ramPath: granter.ramPath };
}
