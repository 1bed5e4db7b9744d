/** Helpers for timelines' lists of pending points, kept sorted by seqno. */

/** Index of the first point whose seqno is >= `seqno` in a list sorted by seqno (binary search). */
export function firstAtOrAfter(sorted: ReadonlyArray<{ readonly seqno: number }>, seqno: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]!.seqno < seqno) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
