/**
 * The backend's own cost per grant entry mapped and unmapped, in
 * nanoseconds: HV_GRANT_STATS (protocol v2) counts the entries and the time
 * of its per-entry loops in the backend process; the bench asks once, at
 * the end of the run, and divides; and around the map trials, for the
 * backend's share of one map. A backend whose control session speaks v1
 * has no such counter: the figure is then "not measured", with why.
 */
import { HV_GRANT_STATS } from '../../protocol/messages/grant.ts';
import type { ResponseOf } from '../../protocol/message.ts';
import type { HvClient } from '../../src/transport/hv-client.ts';
import type { BackendCost } from './types.ts';

/** What HV_GRANT_STATS answers. */
export type GrantStats = ResponseOf<typeof HV_GRANT_STATS>;

const perEntry = (ns: number, entries: number): number | null => (entries > 0 ? Math.round((ns / entries) * 10) / 10 : null);

/** The cost per entry from the counters, or why it is not known. */
export function backendCost(stats: GrantStats | undefined, why?: string): BackendCost {
  if (!stats) return { mapNsPerEntry: null, unmapNsPerEntry: null, source: `not measured: ${why ?? 'no counters'}` };
  const dir = stats.dirPages > 0 ? `, ${stats.dirPages} directory pages at ${perEntry(stats.dirNs, stats.dirPages)} ns each` : '';
  return {
    mapNsPerEntry: perEntry(stats.mapNs, stats.mapEntries), unmapNsPerEntry: perEntry(stats.unmapNs, stats.unmapEntries),
    source: `HV_GRANT_STATS over the whole run, both pairs: ${stats.mapEntries} entries mapped, ${stats.unmapEntries} unmapped${dir}, timed around the per-entry loops in the backend process`,
  };
}

/** Why a counter of the backend was not read. */
export interface NotMeasured {
  why: string;
}

/** HV_GRANT_STATS now over the control session, or why it cannot be had (a v1 session has no such counter). */
export async function readGrantStats(control: HvClient): Promise<{ stats: GrantStats } | NotMeasured> {
  if (control.version < HV_GRANT_STATS.since) return { why: `the control session speaks v${control.version}; HV_GRANT_STATS exists from v${HV_GRANT_STATS.since}` };
  try {
    return { stats: await control.call(HV_GRANT_STATS, {}, 15_000) };
  } catch (e) {
    return { why: `HV_GRANT_STATS failed: ${(e as Error).message}` };
  }
}

/** Asks the backend for its counters over the control session, if that session's version has them. */
export async function readBackendCost(control: HvClient): Promise<BackendCost> {
  const read = await readGrantStats(control);
  return 'stats' in read ? backendCost(read.stats) : backendCost(undefined, read.why);
}

/** The backend's own work for each of `maps` maps made between two readings of its counters. */
export interface GrantWork {
  /** µs in its per-entry map loops and its directory reads, per map. */
  us: number;
  /** Grant entries it mapped, and directory pages it read, per map. */
  entries: number;
  dirPages: number;
}

/** GrantWork per map from the counters read before and after `maps` maps (and nothing else that maps). */
export function grantWorkPerMap(before: GrantStats, after: GrantStats, maps: number): GrantWork {
  const ns = after.mapNs - before.mapNs + (after.dirNs - before.dirNs);
  return { us: ns / 1000 / maps, entries: (after.mapEntries - before.mapEntries) / maps, dirPages: (after.dirPages - before.dirPages) / maps };
}
