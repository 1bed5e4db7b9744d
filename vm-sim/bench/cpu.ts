/**
 * CPU time of a process's main thread, from Linux's /proc/<pid>/schedstat
 * (nanoseconds on the CPU, cumulative). JavaScript runs on the main thread,
 * so the difference over a loop of round trips says what each process
 * spent per round trip, which the machine's load inflates far less than
 * wall time. Null where /proc is not available.
 */
import { readFileSync } from 'node:fs';

/** Nanoseconds the main thread of `pid` has run, or null. */
export function cpuNs(pid: number): number | null {
  try {
    const first = readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0];
    const ns = Number(first);
    return Number.isFinite(ns) ? ns : null;
  } catch {
    return null;
  }
}

/** Main-thread CPU of several processes over one stretch of work. */
export class CpuMeter {
  private readonly totals: number[];
  private ok = true;

  constructor(private readonly pids: readonly number[]) {
    this.totals = pids.map(() => 0);
  }

  /** Runs `work` and adds each process's CPU over it. */
  async measure<T>(work: () => Promise<T>): Promise<T> {
    const before = this.pids.map(cpuNs);
    const out = await work();
    this.pids.forEach((pid, i) => {
      const a = before[i];
      const b = cpuNs(pid);
      if (a === null || a === undefined || b === null) this.ok = false;
      else this.totals[i]! += b - a;
    });
    return out;
  }

  /** µs per operation for each process, or null when a reading failed. */
  perOp(ops: number): number[] | null {
    return this.ok && ops > 0 ? this.totals.map((ns) => Math.round(ns / ops / 100) / 10) : null;
  }
}
