/**
 * The backend's own cost per grant entry mapped and unmapped, in
 * nanoseconds, read from the HV_STATS snapshot taken when the run stops (the
 * backend measures it in its own process; the bench only divides).
 */
import type { BackendCost } from './types.ts';

/** Cumulative counters of a backend that measures its per-entry work. */
interface EntryCost {
  entries: number;
  ns: number;
}

function entryCost(x: unknown): EntryCost | undefined {
  if (typeof x !== 'object' || x === null) return undefined;
  const { entries, ns } = x as Record<string, unknown>;
  return typeof entries === 'number' && typeof ns === 'number' ? { entries, ns } : undefined;
}

const perEntry = (c: EntryCost | undefined): number | null => (c && c.entries > 0 ? Math.round((c.ns / c.entries) * 10) / 10 : null);

/** The cost per entry from an HV_STATS body, or why it is not known. */
export function backendCost(stats: unknown, error?: string): BackendCost {
  if (stats === undefined || stats === null) return { mapNsPerEntry: null, unmapNsPerEntry: null, source: `not measured: HV_STATS failed (${error ?? 'no answer'})` };
  const grantCost = (stats as Record<string, unknown>).grantCost as Record<string, unknown> | undefined;
  if (!grantCost) return { mapNsPerEntry: null, unmapNsPerEntry: null, source: 'not measured: this backend\'s HV_STATS carries no per-entry cost counter' };
  const map = entryCost(grantCost.map);
  const unmap = entryCost(grantCost.unmap);
  return {
    mapNsPerEntry: perEntry(map), unmapNsPerEntry: perEntry(unmap),
    source: `HV_STATS.grantCost over the whole run: ${map?.entries ?? 0} entries mapped, ${unmap?.entries ?? 0} unmapped, timed in the backend process`,
  };
}
