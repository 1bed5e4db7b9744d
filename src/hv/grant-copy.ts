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

/**
 * Runs a batch of copy ops for `caller`. Per op, in order:
 *  1. source.offset + len and dest.offset + len must not exceed 4096: else GNTST_bad_copy_arg.
 *  2. Resolve the source (read use), then the destination (write use); see resolveSide.
 *  3. Copy, then drop the pins taken in step 2.
 * Each op has its own status; a failed op changes nothing.
 */
export function copyBatch(ctx: HvContext, caller: Domain, body: RequestOf<typeof GNTTAB_COPY>): ResponseOf<typeof GNTTAB_COPY> {
  const status = new Array<number>(body.ops.length);
  const openRam = (d: Domain) => () => ctx.files.open(d.ramPath);
  for (let i = 0; i < body.ops.length; i++) {
    const op = body.ops[i]!;
    if (op.source.offset + op.len > PAGE_SIZE || op.dest.offset + op.len > PAGE_SIZE) {
      status[i] = GNTST.bad_copy_arg;
      continue;
    }
    const src = resolveSide(ctx, caller, op.source, (op.flags & GNTCOPY.source_gref) !== 0, false);
    if (src.status !== GNTST.okay) {
      status[i] = src.status;
      continue;
    }
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
    status[i] = dst.status;
    if (dst.status === GNTST.okay) ctx.traffic.grantCopy(caller.domid, op.len);
  }
  return { status };
}
