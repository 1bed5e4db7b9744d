/** HV_STATS: a snapshot of every domain's resources and of the files, for leak checks. */
import type { ResponseOf } from '../../protocol/index.ts';
import type { HV_STATS, HV_STATS_V2 } from '../../protocol/messages/control.ts';
import type { HvContext } from './context.ts';
import type { Maptrack } from './maptrack.ts';

/** The HV_STATS response body (v2, the whole snapshot). */
export type HvStatsBody = ResponseOf<typeof HV_STATS_V2>;

/** The HV_STATS response body of a version-1 session. */
export type HvStatsBodyV1 = ResponseOf<typeof HV_STATS>;

/** Version 1's answer: the same snapshot without the fields v2 added (SPEC 12, HV_STATS). */
export function statsV1(s: HvStatsBody): HvStatsBodyV1 {
  return {
    domains: s.domains.map(({ mappingsOfDead: _dead, ...d }) => d),
    shmFiles: s.shmFiles,
    routedPending: s.routedPending,
  };
}

/** Live maptrack entries whose granting domain is dying, dead or gone. */
function mappingsOfDead(ctx: HvContext, maptrack: Maptrack): number {
  let n = 0;
  for (const slot of maptrack.liveSlots()) {
    if (ctx.registry.get(maptrack.granterOf(slot))?.alive !== true) n++;
  }
  return n;
}

/**
 * Every guest domain not yet removed (the control domain has no resources
 * and is not listed), with: grant entries in use and busy among the
 * nrFrames*512 entries of its table (GrantTableView.census, read from the
 * shared table), live maptrack entries, open ports; the files of this run
 * that exist; routed requests awaiting replies; and what the backend moved
 * for every domain that ever had a session, removed ones included
 * (traffic.ts).
 */
export function collectStats(ctx: HvContext): HvStatsBody {
  const domains = ctx.registry.all().map((d) => {
    const { inUse, busy } = d.table.census(d.nrEntries);
    return {
      domid: d.domid,
      name: d.name,
      state: d.state,
      connected: d.session?.isOpen ?? false,
      grantsInUse: inUse,
      busyGrants: busy,
      mappings: d.maptrack.live,
      mappingsOfDead: mappingsOfDead(ctx, d.maptrack),
      ports: d.ports.open,
    };
  });
  return { domains, shmFiles: ctx.files.list(), routedPending: ctx.router.pending, internalErrors: ctx.counters.internalErrors, traffic: ctx.traffic.all() };
}
