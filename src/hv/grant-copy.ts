/**
 * GNTTAB_COPY: the backend copies bytes between a granted page and the
 * caller's own frame (or between two grants, or two own frames), for
 * callers that want copy rather than map semantics.
 *
 * Each grant side is pinned for the duration of its op with the same rules
 * as a map (grant-pin.ts): GTF_reading (and GTF_writing for the
 * destination) is set by compare-exchange against a validated copy of the
 * entry before the frame is read, so the granter cannot end access and
 * reuse the page mid-copy; the pins are dropped right after.
 *
 * The bytes move through the backend's own read-write mapping of each
 * domain's whole RAM (Domain.ram), made on first use and kept until the
 * domain is removed: one mmap per domain instead of a pread/pwrite pair
 * per op.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { GNTCOPY, GNTST, PAGE_SIZE, type RequestOf, type ResponseOf } from '../../protocol/index.ts';
import type { GNTTAB_COPY } from '../../protocol/messages/grant.ts';
import type { HvContext } from './context.ts';
import { Domain } from './domain.ts';
import { acquireGrant, releaseGrant } from './grant-pin.ts';

/** One side of a copy op as declared. */
type CopySide = RequestOf<typeof GNTTAB_COPY>['ops'][number]['source'];

/** A side resolved to a domain and frame, or a status. */
interface Resolved {
  status: number;
  domain: Domain | undefined;
  frame: number;
  /** True if a pin was taken (to drop after the copy). */
  pinned: boolean;
}

/**
 * Resolves one side. A grant side (its GNTCOPY_*_gref flag set): the
 * granting domain must be alive (GNTST_bad_domain), then acquireGrant's
 * steps for a copy (bad_gntref, permission_denied — including a read-only
 * grant as a destination —, no_space, general_error, bad_page); a
 * GTF_sub_page entry is copy-only, so it may be copied. A frame side: `dom`
 * must be the caller (GNTST_permission_denied) and the frame inside its RAM
 * (GNTST_bad_page).
 */
function resolveSide(ctx: HvContext, caller: Domain, side: CopySide, isGref: boolean, writable: boolean): Resolved {
  if (!isGref) {
    if (side.dom !== caller.domid) return { status: GNTST.permission_denied, domain: undefined, frame: 0, pinned: false };
    if (side.ref >= caller.memPages) return { status: GNTST.bad_page, domain: undefined, frame: 0, pinned: false };
    return { status: GNTST.okay, domain: caller, frame: side.ref, pinned: false };
  }
  const granter = ctx.registry.get(side.dom);
  if (!granter || !granter.alive) return { status: GNTST.bad_domain, domain: undefined, frame: 0, pinned: false };
  const r = acquireGrant(granter, side.ref, caller.domid, writable, true);
  if (r < 0) return { status: r, domain: undefined, frame: 0, pinned: false };
  return { status: GNTST.okay, domain: granter, frame: r, pinned: true };
}

/** Most ops of a copy batch processed per event-loop turn. */
export const COPY_SLICE_OPS = 4096;
/** Most bytes a slice of a copy batch copies before it ends (a slice ends after the op that reaches it). */
export const COPY_SLICE_BYTES = 4 * 1024 * 1024;

/**
 * Runs a batch of copy ops for `caller`. Per op, in order:
 *  1. source.offset + len and dest.offset + len must not exceed 4096: else GNTST_bad_copy_arg.
 *  2. Resolve the source (read use), then the destination (write use); see resolveSide.
 *  3. Copy, then drop the pins taken in step 2.
 * Each op has its own status; a failed op changes nothing. A long batch is
 * processed in slices (COPY_SLICE_OPS ops or COPY_SLICE_BYTES copied,
 * whichever comes first) with a turn of the event loop between them, so
 * that 65,536 ops do not stall every other domain (SPEC.md 7.6 step 5); if
 * the caller died in between, the rest is not processed (nobody reads the
 * answer, and its RAM is going away).
 */
export async function copyBatch(ctx: HvContext, caller: Domain, body: RequestOf<typeof GNTTAB_COPY>): Promise<ResponseOf<typeof GNTTAB_COPY>> {
  const n = body.ops.length;
  const status = new Array<number>(n);
  let i = 0;
  while (i < n) {
    if (i > 0) {
      await nextTurn();
      if (!caller.alive) {
        status.fill(GNTST.general_error, i);
        break;
      }
    }
    i = copySlice(ctx, caller, body.ops, i, status);
  }
  return { status };
}

/** Runs ops from `start` until a slice's ops or bytes are used up; returns the index of the next op. */
function copySlice(ctx: HvContext, caller: Domain, ops: RequestOf<typeof GNTTAB_COPY>['ops'], start: number, status: number[]): number {
  const openRam = (d: Domain) => () => ctx.files.open(d.ramPath);
  const end = Math.min(ops.length, start + COPY_SLICE_OPS);
  let copied = 0;
  let i = start;
  while (i < end && copied < COPY_SLICE_BYTES) {
    const op = ops[i]!;
    status[i] = copyOne(ctx, caller, op, openRam);
    if (status[i] === GNTST.okay) copied += op.len;
    i++;
  }
  return i;
}

function copyOne(ctx: HvContext, caller: Domain, op: RequestOf<typeof GNTTAB_COPY>['ops'][number], openRam: (d: Domain) => () => number): number {
  if (op.source.offset + op.len > PAGE_SIZE || op.dest.offset + op.len > PAGE_SIZE) return GNTST.bad_copy_arg;
  const src = resolveSide(ctx, caller, op.source, (op.flags & GNTCOPY.source_gref) !== 0, false);
  if (src.status !== GNTST.okay) return src.status;
  const dst = resolveSide(ctx, caller, op.dest, (op.flags & GNTCOPY.dest_gref) !== 0, true);
  if (dst.status === GNTST.okay && op.len > 0) {
    const from = src.domain!.ram(openRam(src.domain!));
    const to = dst.domain!.ram(openRam(dst.domain!));
    const at = Domain.frameOffset(src.frame) + op.source.offset;
    // TypedArray.set copies as if through a temporary when both views share a buffer.
    to.set(from.subarray(at, at + op.len), Domain.frameOffset(dst.frame) + op.dest.offset);
  }
  if (dst.pinned) releaseGrant(dst.domain!, op.dest.ref, true);
  if (src.pinned) releaseGrant(src.domain!, op.source.ref, false);
  if (dst.status === GNTST.okay) ctx.traffic.grantCopy(caller.domid, op.len);
  return dst.status;
}
