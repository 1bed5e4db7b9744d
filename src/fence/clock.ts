/**
 * Time sources and timers for the fence model.
 *
 * Linux counts wait timeouts in jiffies; this model counts them in
 * milliseconds and uses `Infinity` for MAX_SCHEDULE_TIMEOUT. Signal
 * timestamps are CLOCK_MONOTONIC nanoseconds (ktime_get), as a bigint so the
 * u64 `timestamp_ns` of sync_fence_info is represented exactly.
 */

/** "Wait forever": Linux's MAX_SCHEDULE_TIMEOUT, as a millisecond timeout. */
export const MAX_SCHEDULE_TIMEOUT = Number.POSITIVE_INFINITY;

/** Monotonic time in nanoseconds (ktime_get()). */
export function ktimeGetNs(): bigint {
  return process.hrtime.bigint();
}

/** Monotonic time in milliseconds, for measuring remaining wait time. */
export function nowMs(): number {
  return performance.now();
}

// setTimeout silently turns delays above 2^31-1 ms into 1 ms, so long
// timeouts are armed in slices.
const MAX_TIMER_MS = 0x7fffffff;

/**
 * Calls `fn` once after `ms` milliseconds unless cancelled first.
 * An infinite `ms` arms nothing. The timer does not keep the process alive
 * longer than a pending fence wait would anyway, so it is left ref'ed.
 *
 * @returns a function that cancels the timer (idempotent)
 */
export function armTimeout(ms: number, fn: () => void): () => void {
  if (!Number.isFinite(ms)) return () => {};
  const deadline = nowMs() + ms;
  let handle: ReturnType<typeof setTimeout> | undefined;
  const arm = (delay: number): void => {
    handle = setTimeout(() => {
      const left = deadline - nowMs();
      if (left > 0 && delay === MAX_TIMER_MS) arm(Math.min(left, MAX_TIMER_MS));
      else fn();
    }, delay);
  };
  arm(Math.min(Math.max(ms, 0), MAX_TIMER_MS));
  return () => {
    if (handle !== undefined) clearTimeout(handle);
    handle = undefined;
  };
}

/**
 * Time left of a wait of `timeoutMs` that started at `startMs` ({@link nowMs}),
 * never below 1 because 0 means "timed out". Infinite waits stay infinite.
 */
export function remainingMs(timeoutMs: number, startMs: number): number {
  if (!Number.isFinite(timeoutMs)) return MAX_SCHEDULE_TIMEOUT;
  return Math.max(1, Math.ceil(timeoutMs - (nowMs() - startMs)));
}
