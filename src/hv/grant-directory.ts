/**
 * GNTTAB_MAP_DIRECTORY (v2, SPEC.md 7.7): the backend reads a hyper_dmabuf
 * gref directory granted to the caller and maps every data page it names,
 * so that an import takes one round trip to the backend whatever the
 * directory format.
 *
 * It does what an importer does in v1, page by page and with the same
 * checks, without the round trips: each directory page is pinned read-only
 * exactly as a map entry (acquireGrant: ref range, pinned-entry record, pin
 * limit, type, grantee, GTF_reading by compare-exchange against a validated
 * copy, frame read once, frame in range), copied once into private memory
 * while pinned (one pread from the granter's RAM file), and unpinned (releaseGrant: busy bits per XSA-230). Only the
 * copy is decoded (XSA-155), with the importer's own directory decoder
 * (src/hyper-dmabuf/directory, pure functions of SPEC.md 10.3). The data
 * refs are then mapped as one GNTTAB_MAP_GRANT_REF batch (grant-map.ts).
 */
import { closeSync, readSync } from 'node:fs';
import { GNTMAP, GNTST, PAGE_SIZE, type RequestOf, type ResponseOf } from '../../protocol/index.ts';
import type { GNTTAB_MAP_DIRECTORY } from '../../protocol/messages/grant.ts';
import { walkDirectory } from '../hyper-dmabuf/directory/index.ts';
import { readWordsLE } from '../hyper-dmabuf/directory/le-words.ts';
import type { HvContext } from './context.ts';
import { Domain } from './domain.ts';
import { mapBatchStatus, mapInto, mapOutput } from './grant-map.ts';
import { acquireGrant, releaseGrant } from './grant-pin.ts';
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
  // pread of each page into private memory: no mapping of the granter's whole RAM for a few pages.
  const fd = ctx.files.open(granter.ramPath);
  const page = new Uint8Array(PAGE_SIZE);
  const me = caller.domid;
  try {
    while (!walk.done) {
      const pages: Uint32Array[] = [];
      for (const ref of walk.wanted) {
        dirRefs.push(ref);
        const frame = acquireGrant(granter, ref, me, false);
        if (frame < 0) {
          dirStatus.push(frame);
          return refused(dirRefs, dirStatus, granter.ramPath);
        }
        dirStatus.push(GNTST.okay);
        try {
          if (readSync(fd, page, 0, PAGE_SIZE, Domain.frameOffset(frame)) !== PAGE_SIZE) throw new Error(`short read of frame ${frame}`);
          pages.push(readWordsLE(page));
        } finally {
          releaseGrant(granter, ref, false);
        }
      }
      walk.supply(pages);
    }
  } finally {
    closeSync(fd);
    stats.dirPages += dirRefs.length;
    stats.dirNs += nsSince(t0);
  }

  const out = mapOutput(body.nents);
  await mapInto(ctx, caller, granter, walk.result(), (body.flags & GNTMAP.readonly) === 0, out);
  return { dirRefs: Uint32Array.from(dirRefs), dirStatus: Int16Array.from(dirStatus), ...out, ramPath: granter.ramPath };
}
