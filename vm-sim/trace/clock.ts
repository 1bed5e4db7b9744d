/**
 * The one clock every process of a run stamps its trace records with:
 * performance.timeOrigin + performance.now(), in microseconds since the
 * Unix epoch. timeOrigin is the wall clock at process start and now() a
 * monotonic offset from it, so stamps of different processes on one machine
 * agree to a few microseconds over the length of a run, which is what lets
 * flow arrows go from a sender's slice to a receiver's.
 */

/** Microseconds since the Unix epoch, sub-microsecond resolution. */
export function nowUs(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

/** When this process started, on the same clock (the start of its trace's start-up slice). */
export function processStartUs(): number {
  return performance.timeOrigin * 1000;
}
