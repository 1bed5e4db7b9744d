/**
 * The backend's own measure of its grant batch work (HV_GRANT_STATS):
 * entries and nanoseconds of the per-entry map and unmap loops, measured in
 * this process around each slice, so a benchmark can report the cost per
 * entry without the transport.
 */
import type { ResponseOf } from '../../protocol/index.ts';
import type { HV_GRANT_STATS } from '../../protocol/messages/grant.ts';

/** Counters since the backend started (the HV_GRANT_STATS response). */
export type GrantStats = ResponseOf<typeof HV_GRANT_STATS>;

/** Fresh counters. */
export function newGrantStats(): GrantStats {
  return { mapEntries: 0, mapNs: 0, unmapEntries: 0, unmapNs: 0, dirPages: 0, dirNs: 0, batches: 0, slices: 0 };
}

/** Nanoseconds since `start` (a process.hrtime.bigint() reading), as a number. */
export function nsSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start);
}
