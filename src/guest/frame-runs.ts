/**
 * Helpers over lists of frame numbers: a buffer's frames are a few runs of
 * consecutive frames, and work on memory (scrubbing, mapping, copying) is
 * done per run rather than per page.
 */

/** Calls `fn(first, count)` for each maximal run of ascending consecutive frames, in order. */
export function forEachRun(frames: ArrayLike<number>, fn: (first: number, count: number) => void): void {
  const n = frames.length;
  let i = 0;
  while (i < n) {
    const first = frames[i]!;
    let j = i + 1;
    while (j < n && frames[j] === first + (j - i)) j++;
    fn(first, j - i);
    i = j;
  }
}

/** Number of maximal runs of ascending consecutive frames (1 for a contiguous buffer). */
export function countRuns(frames: ArrayLike<number>): number {
  let runs = 0;
  forEachRun(frames, () => { runs++; });
  return runs;
}

/** True if no two frames of the list are adjacent in memory (|a - b| = 1), whatever their order. */
export function noTwoAdjacent(frames: ArrayLike<number>): boolean {
  const sorted = Uint32Array.from(frames as ArrayLike<number>).sort();
  for (let i = 1; i < sorted.length; i++) if (sorted[i]! - sorted[i - 1]! <= 1) return false;
  return true;
}
