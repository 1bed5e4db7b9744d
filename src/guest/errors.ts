/**
 * Errors raised by a guest's library code: the guest kernel (GuestError,
 * GrantBatchError) and the cross-VM fence layer's local API
 * (FenceRemoteError). Each carries a stable `code`, so that a VM process can
 * send it over IPC and a test or the launcher can match on it without
 * parsing messages.
 */
import { gntstName } from '../../protocol/grant-abi.ts';

/** Stable codes of guest-kernel errors. */
export type GuestErrorCode =
  /** The page allocator cannot satisfy the request. */
  | 'ERR_NO_MEMORY'
  /** The grant table is at its maximum size (Xen's -ENOSPC from gnttab_grant_foreign_access). */
  | 'ERR_LIMIT'
  /** An argument names something invalid (a frame outside RAM, a ref not granted, a double free). */
  | 'ERR_BAD_ARGUMENT'
  /** The object is not in a state that allows the operation (e.g. the kernel is shut down). */
  | 'ERR_STATE'
  /** One or more entries of a batched grant map failed; see GrantMapError. */
  | 'ERR_GRANT_MAP'
  /** One or more entries of a batched grant unmap failed. */
  | 'ERR_GRANT_UNMAP'
  /** One or more operations of a batched grant copy failed. */
  | 'ERR_GRANT_COPY'
  /** The peer died, or the share with it was torn down, while the operation ran (fence layer). */
  | 'ERR_PEER_GONE'
  /** Nothing arrived within the time allowed (fence layer). */
  | 'ERR_TIMEOUT';

/** An error of the guest kernel with a stable code and optional structured details. */
export class GuestError extends Error {
  readonly code: GuestErrorCode;
  /** Plain, structured-clone-safe details (sent over IPC as is). */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: GuestErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'GuestError';
    this.code = code;
    this.details = details;
  }
}

/** Stable codes of the cross-VM fence layer's local errors. */
export type FenceRemoteErrorCode =
  /** An argument names something invalid (a seqno going backwards, a fence of another host). */
  | 'ERR_BAD_ARGUMENT'
  /** A limit was reached (all error slots of a timeline in use, too many refs in one export). */
  | 'ERR_LIMIT'
  /** The object is not in a state that allows the operation (timeline closed, host shut down). */
  | 'ERR_STATE'
  /** The peer died, or the share with it was torn down, while the operation ran. */
  | 'ERR_PEER_GONE'
  /** Nothing arrived within the time allowed. */
  | 'ERR_TIMEOUT';

/** An error of the cross-VM fence layer's local API (src/fence-remote), with a stable code and optional details. */
export class FenceRemoteError extends GuestError {
  declare readonly code: FenceRemoteErrorCode;

  constructor(code: FenceRemoteErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, details);
    this.name = 'FenceRemoteError';
  }
}

/** One failed entry of a batch. */
export interface BatchFailure {
  /** Index in the batch. */
  index: number;
  /** GNTST_* value. */
  status: number;
  /** "GNTST_…" name of the status. */
  name: string;
}

/**
 * Summarises per-entry statuses: how many entries had each GNTST name, and
 * the first few failures with their index. Used in error messages so that a
 * reader sees e.g. "GNTST_permission_denied x1024" without the whole array.
 */
export function summariseStatuses(status: ArrayLike<number>, showFirst = 8): { counts: Record<string, number>; first: BatchFailure[]; failed: number } {
  const counts: Record<string, number> = {};
  const first: BatchFailure[] = [];
  let failed = 0;
  for (let i = 0; i < status.length; i++) {
    const s = status[i]!;
    const name = gntstName(s);
    counts[name] = (counts[name] ?? 0) + 1;
    if (s !== 0) {
      failed++;
      if (first.length < showFirst) first.push({ index: i, status: s, name });
    }
  }
  return { counts, first, failed };
}

/** Formats a status summary as "GNTST_okay x3, GNTST_bad_gntref x1 (first: [3] GNTST_bad_gntref)". */
function describe(status: ArrayLike<number>): string {
  const { counts, first } = summariseStatuses(status);
  const parts = Object.entries(counts).map(([name, n]) => `${name} x${n}`).join(', ');
  const firsts = first.map((f) => `[${f.index}] ${f.name}`).join(', ');
  return firsts ? `${parts} (first failures: ${firsts})` : parts;
}

/**
 * A batch in which some entries failed. Every entry's status is kept; the
 * handles of entries that succeeded were already released by the thrower
 * (XSA-361), so the caller has nothing to clean up.
 */
export class GrantBatchError extends GuestError {
  /** GNTST_* per entry, in batch order. */
  readonly status: readonly number[];

  constructor(code: 'ERR_GRANT_MAP' | 'ERR_GRANT_UNMAP' | 'ERR_GRANT_COPY', what: string, status: ArrayLike<number>, extra: Record<string, unknown> = {}) {
    const summary = summariseStatuses(status);
    super(code, `${what}: ${summary.failed} of ${status.length} entries failed: ${describe(status)}`,
      { ...extra, failed: summary.failed, total: status.length, counts: summary.counts, firstFailures: summary.first });
    this.name = 'GrantBatchError';
    this.status = Array.from(status);
  }

  /** Status names per entry ("GNTST_okay", "GNTST_permission_denied", ...). */
  get statusNames(): string[] {
    return this.status.map(gntstName);
  }
}
