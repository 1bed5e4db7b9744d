/**
 * GNTTAB_MAP_GRANT_REF and GNTTAB_UNMAP_GRANT_REF: batched map and unmap,
 * one status per entry (XSA-361: a failed entry never affects another, and
 * the handles of the entries that succeeded stay valid until unmapped).
 *
 * The per-entry loops run in the addon (grant-native.ts) and allocate
 * nothing: statuses, handles and frames go straight into typed arrays (v2
 * sends them as they are, packed; v1 copies them into arrays once at the
 * end), pins into typed arrays (active-grants.ts, maptrack.ts). A long batch is processed in slices of
 * GRANT_SLICE entries with a turn of the event loop between them, so that a
 * 65,536-entry batch does not stall every other domain (SPEC.md 7.7 rule 4).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { GNTMAP, GNTST, INVALID_GRANT_HANDLE, type RequestOf, type ResponseOf } from '../../protocol/index.ts';
import type {
  GNTTAB_MAP_GRANT_REF, GNTTAB_MAP_GRANT_REF_V2, GNTTAB_UNMAP_GRANT_REF, GNTTAB_UNMAP_GRANT_REF_V2,
} from '../../protocol/messages/grant.ts';
import type { HvContext } from './context.ts';
import type { Domain } from './domain.ts';
import { reapIfUnused } from './domain-lifecycle.ts';
import { mapEntries, unmapEntries, type MapOutput } from './grant-native.ts';
import { nsSince } from './grant-stats.ts';

export type { MapOutput } from './grant-native.ts';

/** Entries of a map or unmap batch processed per event-loop turn. */
export const GRANT_SLICE = 8192;

/** Map flags an HVM/PVH guest may not use (Xen: GNTST_general_error). */
const UNSUPPORTED_MAP_FLAGS = GNTMAP.device_map | GNTMAP.application_map | GNTMAP.contains_pte;

/** A v1 map response body. */
export type MapResult = ResponseOf<typeof GNTTAB_MAP_GRANT_REF>;
/** A v2 map response body. */
export type MapResultV2 = ResponseOf<typeof GNTTAB_MAP_GRANT_REF_V2>;

/** Typed output arrays for n entries. */
export function mapOutput(n: number): MapOutput {
  return { status: new Int16Array(n), handle: new Uint32Array(n), frame: new Uint32Array(n) };
}

/**
 * A typed array's values as a plain array (v1 replies). An indexed loop:
 * Array.from goes through the iterator protocol and took about four times as
 * long for a 65,536-entry v1 reply's three arrays (15 ms of CPU against 4 ms,
 * measured on a loaded machine), one synchronous stretch that every other
 * domain waits for.
 */
function plainArray(values: ArrayLike<number>): number[] {
  const out = new Array<number>(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i]!;
  return out;
}

/**
 * A v1 batch's numbers as a Uint32Array for the native loops (v2's packed
 * arrays already are one). The decoder checked every element is a u32.
 */
function u32Array(values: ArrayLike<number>): Uint32Array {
  if (values instanceof Uint32Array) return values;
  const out = new Uint32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i]!;
  return out;
}

/**
 * Whole-batch checks, whose failure gives every entry the same status:
 *  1. `granter` is a guest domain that is created or running: else GNTST_bad_domain.
 *  2. flags include GNTMAP_host_map: else GNTST_bad_gntref (as Xen).
 *  3. flags include none of device_map, application_map, contains_pte: else
 *     GNTST_general_error (as Xen for HVM guests).
 */
export function mapBatchStatus(granter: Domain | undefined, flags: number): number {
  if (!granter || !granter.alive) return GNTST.bad_domain;
  if ((flags & GNTMAP.host_map) === 0) return GNTST.bad_gntref;
  if ((flags & UNSUPPORTED_MAP_FLAGS) !== 0) return GNTST.general_error;
  return GNTST.okay;
}

/**
 * Maps `refs` of `granter` for `caller` into `out`, entry by entry, after
 * the whole-batch checks passed. Per entry, in order (grant-native.ts): a
 * free maptrack slot (GNTST_no_device_space), then acquireGrant's steps
 * (grant-pin.ts), then a handle is recorded. Between slices: if the caller
 * died, the rest is not processed (its death cascade released what was mapped; nobody reads the
 * answer); if the granter died, the rest gets GNTST_bad_domain.
 */
export async function mapInto(ctx: HvContext, caller: Domain, granter: Domain, refs: Uint32Array, writable: boolean, out: MapOutput): Promise<void> {
  const n = refs.length;
  const { status, handle, frame } = out;
  const stats = ctx.grantStats;
  for (let start = 0; start < n; start += GRANT_SLICE) {
    const end = Math.min(n, start + GRANT_SLICE);
    if (start > 0) {
      await nextTurn();
      if (!caller.alive || !granter.alive) {
        status.fill(caller.alive ? GNTST.bad_domain : GNTST.general_error, start);
        handle.fill(INVALID_GRANT_HANDLE, start);
        frame.fill(0, start);
        return;
      }
    }
    const t0 = process.hrtime.bigint();
    const mapped = mapEntries(caller, granter, refs, start, end, writable, out);
    granter.foreignPins += mapped;
    stats.mapNs += nsSince(t0);
    stats.mapEntries += end - start;
    stats.slices++;
  }
}

/** Maps `refs` of domain `dom` for `caller` (both versions); results in typed arrays. */
async function mapBatch(ctx: HvContext, caller: Domain, dom: number, flags: number, refs: Uint32Array): Promise<MapOutput & { ramPath: string }> {
  const out = mapOutput(refs.length);
  const granter = ctx.registry.get(dom);
  const batchStatus = mapBatchStatus(granter, flags);
  ctx.grantStats.batches++;
  if (batchStatus !== GNTST.okay || !granter) {
    out.status.fill(batchStatus);
    out.handle.fill(INVALID_GRANT_HANDLE);
    return { ...out, ramPath: granter?.ramPath ?? '' };
  }
  await mapInto(ctx, caller, granter, refs, (flags & GNTMAP.readonly) === 0, out);
  return { ...out, ramPath: granter.ramPath };
}

/** GNTTAB_MAP_GRANT_REF in v2: the results as they are, packed. */
export function mapGrantBatchV2(ctx: HvContext, caller: Domain, body: RequestOf<typeof GNTTAB_MAP_GRANT_REF_V2>): Promise<MapResultV2> {
  return mapBatch(ctx, caller, body.dom, body.flags, body.refs);
}

/** GNTTAB_MAP_GRANT_REF in v1: the same work, the results as arrays. */
export async function mapGrantBatch(ctx: HvContext, caller: Domain, body: RequestOf<typeof GNTTAB_MAP_GRANT_REF>): Promise<MapResult> {
  const r = await mapBatch(ctx, caller, body.dom, body.flags, u32Array(body.refs));
  return { status: plainArray(r.status), handle: plainArray(r.handle), frame: plainArray(r.frame), ramPath: r.ramPath };
}

/**
 * Unmaps `handles` of `caller`'s maptrack into `status`. Per handle: a
 * handle never issued, already unmapped, or stale gives GNTST_bad_handle;
 * otherwise the pin of the kind recorded in the maptrack entry is dropped
 * (XSA-234: the recorded flags decide, not the request) and busy bits
 * cleared per releaseGrant (XSA-230). A dead granter is removed once its
 * last foreign pin goes. Between slices, a caller that died stops the
 * batch (its cascade released every entry).
 */
async function unmapInto(ctx: HvContext, caller: Domain, handles: Uint32Array, status: Int16Array): Promise<void> {
  const n = handles.length;
  const maptrack = caller.maptrack;
  const stats = ctx.grantStats;
  stats.batches++;
  for (let start = 0; start < n; start += GRANT_SLICE) {
    const end = Math.min(n, start + GRANT_SLICE);
    if (start > 0) {
      await nextTurn();
      if (!caller.alive) {
        status.fill(GNTST.bad_handle, start);
        return;
      }
    }
    const t0 = process.hrtime.bigint();
    let deadGranters: Domain[] | undefined;
    // One native run per stretch of handles of the same granter (a whole batch, usually).
    for (let i = start; i < end;) {
      const slot = maptrack.lookup(handles[i]!);
      if (slot < 0) {
        status[i++] = GNTST.bad_handle;
        continue;
      }
      const granterId = maptrack.granterOf(slot);
      const granter = ctx.registry.get(granterId);
      if (!granter) {
        // Cannot happen (a granter stays registered while pinned); refuse rather than guess.
        ctx.log(`d${caller.domid}: handle ${handles[i]} names missing granter d${granterId}`);
        status[i++] = GNTST.general_error;
        continue;
      }
      const live0 = maptrack.live;
      i = unmapEntries(caller, granter, handles, i, end, status);
      const unmapped = live0 - maptrack.live;
      granter.foreignPins -= unmapped;
      if (unmapped > 0 && !granter.alive && granter.foreignPins === 0) (deadGranters ??= []).push(granter);
    }
    stats.unmapNs += nsSince(t0);
    stats.unmapEntries += end - start;
    stats.slices++;
    if (deadGranters) for (const g of deadGranters) reapIfUnused(ctx, g);
  }
}

/** GNTTAB_UNMAP_GRANT_REF in v2: statuses packed. */
export async function unmapGrantBatchV2(ctx: HvContext, caller: Domain, body: RequestOf<typeof GNTTAB_UNMAP_GRANT_REF_V2>): Promise<ResponseOf<typeof GNTTAB_UNMAP_GRANT_REF_V2>> {
  const status = new Int16Array(body.handles.length);
  await unmapInto(ctx, caller, body.handles, status);
  return { status };
}

/** GNTTAB_UNMAP_GRANT_REF in v1: statuses as an array. */
export async function unmapGrantBatch(ctx: HvContext, caller: Domain, body: RequestOf<typeof GNTTAB_UNMAP_GRANT_REF>): Promise<ResponseOf<typeof GNTTAB_UNMAP_GRANT_REF>> {
  const status = new Int16Array(body.handles.length);
  await unmapInto(ctx, caller, u32Array(body.handles), status);
  return { status: plainArray(status) };
}
