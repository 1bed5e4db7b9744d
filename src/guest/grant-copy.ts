/**
 * Copy semantics over grants (Xen's GNTTABOP_copy, batched): the backend
 * copies bytes between granted pages and the caller's own frames, and nothing
 * is mapped. For callers that want a private copy rather than shared pages.
 */
import { GNTCOPY, GNTST } from '../../protocol/grant-abi.ts';
import { PAGE_SIZE } from '../../protocol/limits.ts';
import { GNTTAB_COPY } from '../../protocol/messages/grant.ts';
import type { RequestOf } from '../../protocol/message.ts';
import { GrantBatchError, GuestError } from './errors.ts';
import { batches, type Hypercaller } from './hypercalls.ts';

/** One copy operation as on the wire. */
export type GrantCopyOp = RequestOf<typeof GNTTAB_COPY>['ops'][number];

/** Runs copy ops, one round trip per maxBatch; resolves with a GNTST status per op. */
export async function grantCopy(hv: Hypercaller, ops: readonly GrantCopyOp[]): Promise<number[]> {
  const out: number[] = [];
  const replies = await Promise.all(batches(ops.length, hv.maxBatch).map(([s, e]) => hv.call(GNTTAB_COPY, { ops: ops.slice(s, e) })));
  for (const r of replies) out.push(...r.status);
  return out;
}

/** Which way whole pages go. */
export type CopyDirection = 'from-grants' | 'to-grants';

/**
 * Copies whole pages between `dom`'s granted refs and this domain's frames,
 * pairwise. Throws GrantBatchError (ERR_GRANT_COPY) if any op failed.
 */
export async function copyPages(hv: Hypercaller, direction: CopyDirection, dom: number, refs: ArrayLike<number>, localFrames: ArrayLike<number>): Promise<void> {
  if (refs.length !== localFrames.length) throw new GuestError('ERR_BAD_ARGUMENT', `${refs.length} refs but ${localFrames.length} frames`);
  const ops: GrantCopyOp[] = [];
  for (let i = 0; i < refs.length; i++) {
    const granted = { ref: refs[i]!, dom, offset: 0 };
    const local = { ref: localFrames[i]!, dom: hv.domid, offset: 0 };
    ops.push(direction === 'from-grants'
      ? { source: granted, dest: local, len: PAGE_SIZE, flags: GNTCOPY.source_gref }
      : { source: local, dest: granted, len: PAGE_SIZE, flags: GNTCOPY.dest_gref });
  }
  const status = await grantCopy(hv, ops);
  if (status.some((s) => s !== GNTST.okay)) throw new GrantBatchError('ERR_GRANT_COPY', `copying ${refs.length} pages ${direction} of dom${dom}`, status, { dom });
}
