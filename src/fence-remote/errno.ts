/**
 * Fence statuses of cross-VM fences, on top of the local model's errno
 * values (src/fence/errno.ts). Each cause of a forced completion has its own
 * errno, so a waiter can tell why a remote fence ended.
 */
import { ECANCELED, ENOENT, errnoName } from '../fence/errno.ts';

/** Broken pipe: the domain that owns the timeline died. */
export const EPIPE = -32;
/** Protocol error: the timeline page contradicts the protocol (slot tag or status). */
export const EPROTO = -71;

/** Status of points still pending when their owner destroys the timeline (as sw_sync's close). */
export const FENCE_ERR_CLOSED = ENOENT;
/** Status of imported points still pending when their owner domain dies. */
export const FENCE_ERR_OWNER_DIED = EPIPE;
/** Status of imported points the observer gives up itself (its host shuts down, or the owner unshared the timeline). */
export const FENCE_ERR_DETACHED = ECANCELED;
/** Status of an imported point whose page entry is inconsistent (a buggy or hostile owner). */
export const FENCE_ERR_PROTOCOL = EPROTO;

/** errnoName, knowing the cross-VM statuses too. */
export function fenceErrnoName(errno: number): string {
  if (errno === EPIPE) return 'EPIPE';
  if (errno === EPROTO) return 'EPROTO';
  return errnoName(errno);
}

/** A status as text: "pending", "signalled" or the errno name. */
export function statusText(status: number): string {
  if (status === 0) return 'pending';
  if (status === 1) return 'signalled';
  return fenceErrnoName(status);
}
