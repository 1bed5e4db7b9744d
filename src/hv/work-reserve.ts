/**
 * The work reserve of a request the backend handles itself (SPEC.md 3.7):
 * the bytes that its handling may hold at once, counted against the
 * connection's send budget from the moment it is read until its reply is
 * queued. Reading a connection pauses while its unsent bytes plus the
 * reserves of its requests in flight exceed the budget, so a domain that
 * never reads its replies cannot make the backend start more work than its
 * budget covers, however many requests it has in flight.
 *
 * A request's reserve grows with its batch: the entries of its longest
 * array (refs, handles, ops; a directory's `nents`) times the most one
 * entry's handling holds (its decoded request entry, its typed result, a
 * version-1 result array element per reply field, its encoded reply bytes),
 * plus a fixed part for the envelope and small replies.
 */
import type { Envelope, RequestDecl } from '../../protocol/index.ts';

/** Reserve of any request, batch or not: its envelope and a small reply. */
export const WORK_RESERVE_BASE_BYTES = 4096;
/** Reserve per batch entry: decoded entry (8) + typed results (10) + v1 result elements (3 x 8) + encoded reply entry (at most 13), rounded up. */
export const WORK_RESERVE_ENTRY_BYTES = 64;

/** The work reserve of a request the backend handles; 0 for routed requests (the peer's budget governs their replies, SPEC 6.1). */
export function workReserve(env: Envelope, decl: RequestDecl): number {
  if (decl.route !== 'hv') return 0;
  return WORK_RESERVE_BASE_BYTES + batchEntries(env.body) * WORK_RESERVE_ENTRY_BYTES;
}

/** Entries of the longest array or packed array of a request body, or its declared entry count (`nents`). */
function batchEntries(body: Record<string, unknown>): number {
  let n = 0;
  for (const value of Object.values(body)) {
    if (Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView))) n = Math.max(n, (value as ArrayLike<unknown>).length);
  }
  if (typeof body.nents === 'number') n = Math.max(n, body.nents);
  return n;
}
