/**
 * GNTTAB_MAP_GRANT_REF and GNTTAB_UNMAP_GRANT_REF: batched map and unmap,
 * one status per entry (XSA-361: a failed entry never affects another, and
 * the handles of the entries that succeeded stay valid until unmapped).
 *
 * The batch loop allocates nothing per entry: results go straight into
 * three preallocated arrays, pins into typed arrays (active-grants.ts,
 * maptrack.ts).
 */
import { GNTMAP, GNTST, INVALID_GRANT_HANDLE, type RequestOf, type ResponseOf } from '../../protocol/index.ts';
import type { GNTTAB_MAP_GRANT_REF, GNTTAB_UNMAP_GRANT_REF } from '../../protocol/messages/grant.ts';
import type { HvContext } from './context.ts';
import type { Domain } from './domain.ts';
import { reapIfUnused } from './domain-lifecycle.ts';
import { acquireGrant, releaseGrant } from './grant-pin.ts';

/** Map flags an HVM/PVH guest may not use (Xen: GNTST_general_error). */
const UNSUPPORTED_MAP_FLAGS = GNTMAP.device_map | GNTMAP.application_map | GNTMAP.contains_pte;

/** A map response body. */
export type MapResult = ResponseOf<typeof GNTTAB_MAP_GRANT_REF>;

/**
 * Maps `refs` of domain `dom` for `caller`.
 *
 * Whole-batch checks, whose failure gives every entry the same status:
 *  1. `dom` is a guest domain that is created or running: else GNTST_bad_domain.
 *  2. flags include GNTMAP_host_map: else GNTST_bad_gntref (as Xen).
 *  3. flags include none of device_map, application_map, contains_pte: else
 *     GNTST_general_error (as Xen for HVM guests).
 * Then per entry, in order: a free maptrack slot (GNTST_no_device_space),
 * then acquireGrant's steps (grant-pin.ts), then a handle is recorded.
 */
export function mapGrantBatch(ctx: HvContext, caller: Domain, body: RequestOf<typeof GNTTAB_MAP_GRANT_REF>): MapResult {
  const { refs, flags } = body;
  const n = refs.length;
  const status = new Array<number>(n);
  const handle = new Array<number>(n);
  const frame = new Array<number>(n);
  const granter = ctx.registry.get(body.dom);
  let batchStatus: number = GNTST.okay;
  if (!granter || !granter.alive) batchStatus = GNTST.bad_domain;
  else if ((flags & GNTMAP.host_map) === 0) batchStatus = GNTST.bad_gntref;
  else if ((flags & UNSUPPORTED_MAP_FLAGS) !== 0) batchStatus = GNTST.general_error;
  if (batchStatus !== GNTST.okay || !granter) {
    status.fill(batchStatus);
    handle.fill(INVALID_GRANT_HANDLE);
    frame.fill(0);
    return { status, handle, frame, ramPath: granter?.ramPath ?? '' };
  }
  const writable = (flags & GNTMAP.readonly) === 0;
  const maptrack = caller.maptrack;
  const me = caller.domid;
  const granterId = granter.domid;
  let mapped = 0;
  for (let i = 0; i < n; i++) {
    const ref = refs[i]!;
    let r: number;
    if (maptrack.full) r = GNTST.no_device_space;
    else r = acquireGrant(granter, ref, me, writable);
    if (r >= 0) {
      status[i] = GNTST.okay;
      handle[i] = maptrack.alloc(granterId, ref, writable);
      frame[i] = r;
      mapped++;
    } else {
      status[i] = r;
      handle[i] = INVALID_GRANT_HANDLE;
      frame[i] = 0;
    }
  }
  granter.foreignPins += mapped;
  return { status, handle, frame, ramPath: granter.ramPath };
}

/**
 * Unmaps `handles` of `caller`'s maptrack. Per handle: a handle never
 * issued, already unmapped, or stale gives GNTST_bad_handle; otherwise the
 * pin of the kind recorded in the maptrack entry is dropped (XSA-234: the
 * recorded flags decide, not the request) and busy bits cleared per
 * releaseGrant (XSA-230). A dead granter is removed once its last foreign
 * pin goes.
 */
export function unmapGrantBatch(ctx: HvContext, caller: Domain, body: RequestOf<typeof GNTTAB_UNMAP_GRANT_REF>): ResponseOf<typeof GNTTAB_UNMAP_GRANT_REF> {
  const { handles } = body;
  const n = handles.length;
  const status = new Array<number>(n);
  const maptrack = caller.maptrack;
  let lastGranter: Domain | undefined;
  let deadGranters: Domain[] | undefined;
  for (let i = 0; i < n; i++) {
    const slot = maptrack.lookup(handles[i]!);
    if (slot < 0) {
      status[i] = GNTST.bad_handle;
      continue;
    }
    const granterId = maptrack.granterOf(slot);
    const granter = lastGranter?.domid === granterId ? lastGranter : ctx.registry.get(granterId);
    if (!granter) {
      // Cannot happen (a granter stays registered while pinned); refuse rather than guess.
      ctx.log(`d${caller.domid}: handle ${handles[i]} names missing granter d${granterId}`);
      status[i] = GNTST.general_error;
      continue;
    }
    lastGranter = granter;
    releaseGrant(granter, maptrack.refOf(slot), maptrack.isWritable(slot));
    maptrack.free(slot);
    granter.foreignPins--;
    if (!granter.alive && granter.foreignPins === 0) (deadGranters ??= []).push(granter);
    status[i] = GNTST.okay;
  }
  if (deadGranters) for (const g of deadGranters) reapIfUnused(ctx, g);
  return { status };
}
