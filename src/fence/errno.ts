/**
 * Linux errno values used by the fence model.
 *
 * They are stored **negative**, exactly as in-kernel functions return them
 * (`return -EINVAL;`), so model functions can `return EINVAL` and tests can
 * compare against the same constant. Numbers are the x86/generic asm values.
 *
 * Convention of this module: functions that mirror an in-kernel function with
 * an integer result (dma_fence_signal, dma_fence_add_callback, waits) return
 * these numbers; entry points that mirror an ioctl on a file throw an
 * {@link ErrnoError} carrying the value, because the caller has nothing useful
 * to do with a half-built result.
 */

/** Operation not permitted. */
export const EPERM = -1;
/** No such entry: late dma_fence_add_callback, sw_sync timeline closed, bad merge fd. */
export const ENOENT = -2;
/** Interrupted system call. */
export const EINTR = -4;
/** I/O error (used by the selftests as a fence error). */
export const EIO = -5;
/** Bad file descriptor: an operation on a closed sw_sync timeline. */
export const EBADF = -9;
/** Try again. */
export const EAGAIN = -11;
/** Out of memory. */
export const ENOMEM = -12;
/** Bad address. */
export const EFAULT = -14;
/** Device or resource busy. */
export const EBUSY = -16;
/** Invalid argument: second signal, bad flags, buffer too small. */
export const EINVAL = -22;
/** Inappropriate ioctl for device. */
export const ENOTTY = -25;
/** Resource deadlock would occur: a fence released with waiters but never signalled. */
export const EDEADLK = -35;
/** Timer expired: the old selftest mock wait and IGT's sync_fence_wait timeout. */
export const ETIME = -62;
/** Connection timed out: for peers that give up on a remote fence. */
export const ETIMEDOUT = -110;
/** Broken pipe: the domain that owns a cross-VM timeline died. */
export const EPIPE = -32;
/** Protocol error: a cross-VM timeline page contradicts the protocol (slot tag or status). */
export const EPROTO = -71;
/** Operation cancelled: for fences force-completed on teardown. */
export const ECANCELED = -125;
/** A wait was interrupted and should be restarted (kernel-internal, never reaches userspace). */
export const ERESTARTSYS = -512;

/** Largest errno magnitude; dma_fence_set_error accepts `-MAX_ERRNO <= err < 0`. */
export const MAX_ERRNO = 4095;

const NAMES: ReadonlyMap<number, string> = new Map([
  [EPERM, 'EPERM'],
  [ENOENT, 'ENOENT'],
  [EINTR, 'EINTR'],
  [EIO, 'EIO'],
  [EBADF, 'EBADF'],
  [EAGAIN, 'EAGAIN'],
  [ENOMEM, 'ENOMEM'],
  [EFAULT, 'EFAULT'],
  [EBUSY, 'EBUSY'],
  [EINVAL, 'EINVAL'],
  [ENOTTY, 'ENOTTY'],
  [EDEADLK, 'EDEADLK'],
  [EPIPE, 'EPIPE'],
  [EPROTO, 'EPROTO'],
  [ETIME, 'ETIME'],
  [ETIMEDOUT, 'ETIMEDOUT'],
  [ECANCELED, 'ECANCELED'],
  [ERESTARTSYS, 'ERESTARTSYS'],
]);

/**
 * Symbolic name of a (negative) errno value, e.g. `errnoName(-22) === 'EINVAL'`.
 * Unknown values come back as `errno(<n>)`.
 */
export function errnoName(errno: number): string {
  return NAMES.get(errno) ?? `errno(${errno})`;
}

/** True if `value` is a valid fence error: `-MAX_ERRNO <= value < 0`. */
export function isErrno(value: number): boolean {
  return Number.isInteger(value) && value < 0 && value >= -MAX_ERRNO;
}

/** An ioctl-style failure: `errno` is the negative value the ioctl would return. */
export class ErrnoError extends Error {
  /** The negative errno, e.g. {@link EINVAL}. */
  readonly errno: number;

  /**
   * @param errno negative errno value
   * @param message what failed; the errno name is prefixed
   */
  constructor(errno: number, message: string) {
    super(`${errnoName(errno)}: ${message}`);
    this.name = 'ErrnoError';
    this.errno = errno;
  }
}

/*
 * Statuses of cross-VM fences (SPEC.md 11A.5): each cause of a forced
 * completion has its own errno, so a waiter can tell why a remote fence ended.
 */

/** Status of points still pending when their owner destroys the timeline (as sw_sync's close). */
export const FENCE_ERR_CLOSED = ENOENT;
/** Status of imported points still pending when their owner domain dies. */
export const FENCE_ERR_OWNER_DIED = EPIPE;
/** Status of imported points the observer gives up itself (its host shuts down, or the owner unshared the timeline). */
export const FENCE_ERR_DETACHED = ECANCELED;
/** Status of an imported point whose page entry is inconsistent (a buggy or hostile owner). */
export const FENCE_ERR_PROTOCOL = EPROTO;

/** A fence status as text: "pending", "signalled" or the errno name. */
export function statusText(status: number): string {
  if (status === 0) return 'pending';
  if (status === 1) return 'signalled';
  return errnoName(status);
}
