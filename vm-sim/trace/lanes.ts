/**
 * Puts overlapping intervals on separate lanes (threads of a trace), so
 * that every lane holds complete slices that never overlap, which both
 * Perfetto and DevTools require of slices on one thread.
 */

/** An interval to place. */
export interface Interval {
  readonly ts: number;
  readonly dur: number;
}

/**
 * Greedy first-fit by start time: each interval goes to the first lane that
 * is free at its start. Returns a lane index per interval (same order as
 * given), or -1 for an interval that found no lane within maxLanes.
 */
export function assignLanes(items: readonly Interval[], maxLanes: number): number[] {
  const order = items.map((_, i) => i).sort((a, b) => items[a]!.ts - items[b]!.ts);
  const laneEnd: number[] = [];
  const lane = new Array<number>(items.length).fill(-1);
  for (const i of order) {
    const it = items[i]!;
    let l = laneEnd.findIndex((end) => end <= it.ts);
    if (l < 0 && laneEnd.length < maxLanes) l = laneEnd.push(0) - 1;
    if (l < 0) continue;
    laneEnd[l] = it.ts + Math.max(0, it.dur);
    lane[i] = l;
  }
  return lane;
}
