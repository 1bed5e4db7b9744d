/**
 * The run's traffic figures, from what the backend counted (HV_STATS
 * `traffic`, SPEC.md 9.4) for every guest domain of the run, killed ones
 * included:
 *
 *   bytesCopied     bytes really moved by data-carrying operations: the data
 *                   of routed messages the backend forwarded (ECHO payloads,
 *                   SIM_FRAME_COPY bytes), and the `len` of every GNTTAB_COPY
 *                   op it carried out
 *   routedBytes, grantCopyBytes   the two parts of it
 *   wireBytes, wireFrames, largestFrame   the guests' protocol traffic
 *                   (encoded frames in and out of the backend)
 *
 * The control domain's own traffic (the launcher's HV_STATS, DOMAIN_CREATE)
 * is left out: it is the harness, not the scenario.
 */
import type { HvStatsBody } from '../../src/hv/stats.ts';

/** The traffic of a run. */
export interface TrafficTotals {
  bytesCopied: number;
  routedBytes: number;
  grantCopyBytes: number;
  wireBytes: number;
  wireFrames: number;
  largestFrame: number;
  /** Bytes moved per domain that moved any, by domain id. */
  copiedByDomain: Record<string, number>;
}

/** Sums the backend's per-domain counters over the guests. */
export function trafficTotals(stats: HvStatsBody): TrafficTotals {
  const t: TrafficTotals = { bytesCopied: 0, routedBytes: 0, grantCopyBytes: 0, wireBytes: 0, wireFrames: 0, largestFrame: 0, copiedByDomain: {} };
  for (const d of stats.traffic) {
    if (d.domid === 0) continue;
    t.bytesCopied += d.dataBytes;
    t.routedBytes += d.routedBytes;
    t.grantCopyBytes += d.grantCopyBytes;
    t.wireBytes += d.bytesIn + d.bytesOut;
    t.wireFrames += d.framesIn + d.framesOut;
    t.largestFrame = Math.max(t.largestFrame, d.largestFrame);
    if (d.dataBytes > 0) t.copiedByDomain[`dom${d.domid}`] = d.dataBytes;
  }
  return t;
}
