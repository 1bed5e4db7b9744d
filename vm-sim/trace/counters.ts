/**
 * What the processes of a run sample as counter tracks while tracing
 * (TraceCollector.sampleWith): the backend reads the same snapshot HV_STATS
 * answers (SPEC.md 9.4), each VM its kernel's own counters. Both are read
 * in-process, so sampling sends no frame and changes nothing the trace or
 * the diagram shows.
 *
 * Every value becomes one counter track of its process, named so that a
 * viewer's alphabetical order keeps a domain's tracks together.
 */
import type { HvStatsBody } from '../../src/hv/stats.ts';
import type { GuestKernelStats } from '../../src/guest/kernel.ts';

/** Counter tracks of the backend from an HV_STATS snapshot. */
export function hvCounters(stats: HvStatsBody): Record<string, number> {
  const out: Record<string, number> = {};
  for (const d of stats.domains) {
    const who = `dom${d.domid}`;
    out[`${who} grants in use`] = d.grantsInUse;
    out[`${who} grants busy`] = d.busyGrants;
    out[`${who} mappings`] = d.mappings;
    out[`${who} ports`] = d.ports;
    // Fields added to HV_STATS later (e.g. bytes routed) become tracks without a change here.
    for (const [field, value] of Object.entries(d)) {
      if (typeof value === 'number' && !KNOWN_DOMAIN_FIELDS.has(field)) out[`${who} ${field}`] = value;
    }
  }
  out['routed requests pending'] = stats.routedPending;
  out['shm files'] = stats.shmFiles.length;
  for (const [field, value] of Object.entries(stats)) {
    if (typeof value === 'number' && field !== 'routedPending') out[field] = value;
  }
  return out;
}

const KNOWN_DOMAIN_FIELDS = new Set(['domid', 'grantsInUse', 'busyGrants', 'mappings', 'ports']);

/** Counter tracks of a VM from its kernel's stats. */
export function vmCounters(k: GuestKernelStats): Record<string, number> {
  return {
    'pages used': k.usedPages,
    'grant refs granted': k.grants.granted,
    'mappings live': k.mapper.liveMappings,
    'pages mapped': k.mapper.livePages,
    'ports open': k.ports,
    'wire bytes out': k.wire.bytesOut,
    'wire bytes in': k.wire.bytesIn,
    'wire frames out': k.wire.framesOut,
    'wire frames in': k.wire.framesIn,
  };
}
