/**
 * The grant batch hypercalls of the foreign mapper in each protocol
 * version: v1 sends and receives arrays of integers, v2 packed typed arrays
 * (SPEC.md 4.1, 15). Both fill the same typed result arrays, so the mapper
 * above them does not care which version the connection speaks; the v2
 * path copies each reply into them with one TypedArray#set per batch.
 */
import { GNTST } from '../../protocol/grant-abi.ts';
import type { DirFormat } from '../../protocol/messages/dmabuf.ts';
import {
  GNTTAB_MAP_DIRECTORY, GNTTAB_MAP_GRANT_REF, GNTTAB_MAP_GRANT_REF_V2, GNTTAB_UNMAP_GRANT_REF, GNTTAB_UNMAP_GRANT_REF_V2,
} from '../../protocol/messages/grant.ts';
import { GuestError } from './errors.ts';
import { batches, isConnectionClosed, type Hypercaller } from './hypercalls.ts';

/** Per-entry results of a map, in ref order. */
export interface MapReply {
  readonly status: Int16Array;
  readonly handles: Uint32Array;
  readonly frames: Uint32Array;
  /** The granter's RAM file (undefined if no batch was answered). */
  ramPath: string | undefined;
  /** The first error (a rejected request or an inconsistent reply), if any; entries it covers keep GNTST_general_error. */
  failure: unknown;
  /** Requests sent. */
  requests: number;
}

/** True if the connection speaks v2 (packed batches, GNTTAB_MAP_DIRECTORY). */
export function speaksV2(hv: Hypercaller): boolean {
  return (hv.version ?? 1) >= 2;
}

function emptyReply(n: number): MapReply {
  return {
    status: new Int16Array(n).fill(GNTST.general_error), handles: new Uint32Array(n).fill(0xffffffff), frames: new Uint32Array(n),
    ramPath: undefined, failure: undefined, requests: 0,
  };
}

/** Records one batch's answer at [s, e) of `out`, checking its shape. */
function take(out: MapReply, dom: number, s: number, e: number, r: { status: ArrayLike<number>; handle: ArrayLike<number>; frame: ArrayLike<number>; ramPath: string }): void {
  const n = e - s;
  if (r.status.length !== n || r.handle.length !== n || r.frame.length !== n) {
    out.failure ??= new GuestError('ERR_GRANT_MAP', `GNTTAB_MAP_GRANT_REF answered ${r.status.length} statuses for ${n} refs`);
    return;
  }
  if (out.ramPath !== undefined && r.ramPath !== out.ramPath) out.failure ??= new GuestError('ERR_GRANT_MAP', `batches of dom${dom} named two RAM files`);
  out.ramPath ??= r.ramPath;
  out.status.set(r.status, s);
  out.handles.set(r.handle, s);
  out.frames.set(r.frame, s);
}

/** GNTTAB_MAP_GRANT_REF of every ref, in batches of the backend's maxBatch sent at once. */
export async function requestMaps(hv: Hypercaller, dom: number, flags: number, refs: Uint32Array): Promise<MapReply> {
  const out = emptyReply(refs.length);
  const slices = batches(refs.length, hv.maxBatch);
  out.requests = slices.length;
  const v2 = speaksV2(hv);
  const replies = await Promise.allSettled(slices.map(([s, e]) => (v2
    ? hv.call(GNTTAB_MAP_GRANT_REF_V2, { dom, flags, refs: refs.subarray(s, e) })
    : hv.call(GNTTAB_MAP_GRANT_REF, { dom, flags, refs: Array.from(refs.subarray(s, e)) }))));
  replies.forEach((reply, i) => {
    const [s, e] = slices[i]!;
    if (reply.status === 'rejected') out.failure ??= reply.reason;
    else take(out, dom, s, e, reply.value);
  });
  return out;
}

/** What GNTTAB_MAP_DIRECTORY answered about the directory pages. */
export interface DirectoryReply extends MapReply {
  readonly dirRefs: Uint32Array;
  readonly dirStatus: Int16Array;
}

/**
 * GNTTAB_MAP_DIRECTORY (v2 only): the directory read and every data page
 * mapped by the backend in one round trip. The reply's arrays are this
 * call's own (decoded from run records), so they are kept, not copied.
 */
export async function requestDirectoryMap(hv: Hypercaller, dom: number, flags: number, format: DirFormat, dirRef: number, nents: number): Promise<DirectoryReply> {
  const r = await hv.call(GNTTAB_MAP_DIRECTORY, { dom, flags, format, dirRef, nents });
  const dir = { requests: 1, dirRefs: r.dirRefs, dirStatus: r.dirStatus };
  if (r.status.length === nents && r.handle.length === nents && r.frame.length === nents) {
    return { ...dir, status: r.status, handles: r.handle, frames: r.frame, ramPath: r.ramPath, failure: undefined };
  }
  const out: DirectoryReply = { ...emptyReply(nents), ...dir };
  if (r.status.length === 0 && r.dirStatus.length > 0 && r.dirStatus[r.dirStatus.length - 1] !== GNTST.okay) {
    out.ramPath = r.ramPath;
    return out; // a directory page failed: nothing was mapped
  }
  take(out, dom, 0, nents, r); // records the inconsistent shape as the failure
  return out;
}

/**
 * GNTTAB_UNMAP_GRANT_REF for all handles, one round trip per maxBatch, one
 * after the other. If the connection is gone, the backend has already
 * released every mapping of this domain (domain death), so that counts as
 * done. Returns the statuses, in handle order.
 */
export async function requestUnmaps(hv: Hypercaller, handles: Uint32Array): Promise<{ status: Int32Array; requests: number }> {
  const status = new Int32Array(handles.length);
  const slices = batches(handles.length, hv.maxBatch);
  const v2 = speaksV2(hv);
  for (const [s, e] of slices) {
    try {
      const r = v2
        ? await hv.call(GNTTAB_UNMAP_GRANT_REF_V2, { handles: handles.subarray(s, e) })
        : await hv.call(GNTTAB_UNMAP_GRANT_REF, { handles: Array.from(handles.subarray(s, e)) });
      if (r.status.length !== e - s) throw new GuestError('ERR_GRANT_UNMAP', `GNTTAB_UNMAP_GRANT_REF answered ${r.status.length} statuses for ${e - s} handles`);
      status.set(r.status, s);
    } catch (e2) {
      if (!isConnectionClosed(e2)) throw e2;
      status.fill(GNTST.okay, s, e);
    }
  }
  return { status, requests: slices.length };
}
