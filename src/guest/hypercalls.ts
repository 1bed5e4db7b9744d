/**
 * The narrow view of the backend connection that guest modules use, so that
 * unit tests can stand in for the backend without a socket. HvClient
 * satisfies it.
 */
import type { RequestDecl, RequestOf, ResponseOf } from '../../protocol/index.ts';

/** Issues hypercalls (requests handled by the backend). */
export interface Hypercaller {
  /** This domain. */
  readonly domid: number;
  /** Most entries the backend accepts in one grant batch (from HELLO). */
  readonly maxBatch: number;
  /** Negotiated protocol version (absent: 1). From 2 on, grant batches travel packed (SPEC.md 15). */
  readonly version?: number;
  call<D extends RequestDecl>(decl: D, body: RequestOf<D>, timeoutMs?: number): Promise<ResponseOf<D>>;
}

/** Splits [0, n) into consecutive slices of at most `size`. */
export function batches(n: number, size: number): Array<[start: number, end: number]> {
  const out: Array<[number, number]> = [];
  const step = Math.max(1, size);
  for (let start = 0; start < n; start += step) out.push([start, Math.min(n, start + step)]);
  return out;
}

/** True for the error a request gets when the connection to the backend closed. */
export function isConnectionClosed(e: unknown): boolean {
  return (e as { code?: string } | null)?.code === 'ERR_CLOSED';
}
