/**
 * Errors of the cross-VM fence layer's local API, each with a stable code
 * (VM commands send the code over IPC; tests match on it).
 */

/** Stable codes of local fence-layer errors. */
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

/** A fence-layer error with a stable code and optional details. */
export class FenceRemoteError extends Error {
  readonly code: FenceRemoteErrorCode;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: FenceRemoteErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'FenceRemoteError';
    this.code = code;
    this.details = details;
  }
}
