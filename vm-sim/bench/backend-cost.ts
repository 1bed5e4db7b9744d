/**
 * The backend's own cost per grant entry mapped and unmapped, in
 * nanoseconds: HV_GRANT_STATS (protocol v2) counts the entries and the time
 * of its per-entry loops in the backend process; the bench asks once, at
 * the end of the run, and divides. A backend whose control session speaks
 * v1 has no such counter: the figure is then "not measured", with why.
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

/** Asks the backend for its counters over the control session, if that session's version has them. */
export async function readBackendCost(control: HvClient): Promise<BackendCost> {
  if (control.version < HV_GRANT_STATS.since) return backendCost(undefined, `the control session speaks v${control.version}; HV_GRANT_STATS exists from v${HV_GRANT_STATS.since}`);
  try {
    return backendCost(await control.call(HV_GRANT_STATS, {}, 15_000));
  } catch (e) {
    return backendCost(undefined, `HV_GRANT_STATS failed: ${(e as Error).message}`);
  }
}
