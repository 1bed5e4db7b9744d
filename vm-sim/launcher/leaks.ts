/**
 * Leak measurement of a run, for real:
 *   - busyGrants, mappings: HV_STATS over the control connection just
 *     before shutdown (entries still marked GTF_reading/GTF_writing, and
 *     live maptrack entries, summed over every domain the backend knows);
 *   - processes: after every child has been reaped, the run's pids that
 *     still run;
 *   - shmFiles: after that, the files of /dev/shm whose name starts with the
 *     run's tag.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { HvStatsBody } from '../../src/hv/stats.ts';
import { isRunning } from '../process/child.ts';

/** The four leak counts of a result. */
export interface Leaks {
  busyGrants: number;
  mappings: number;
  processes: number;
  shmFiles: number;
}

/** Busy grants and mappings of a HV_STATS snapshot. */
export function hvLeaks(stats: HvStatsBody): Pick<Leaks, 'busyGrants' | 'mappings'> {
  let busyGrants = 0;
  let mappings = 0;
  for (const d of stats.domains) {
    busyGrants += d.busyGrants;
    mappings += d.mappings;
  }
  return { busyGrants, mappings };
}

/** The pids among `pids` that still run. */
export function runningPids(pids: readonly number[]): number[] {
  return pids.filter(isRunning);
}

/** Names of the files of a run in `dir` (default /dev/shm). */
export function shmFilesOf(runTag: string, dir = '/dev/shm'): string[] {
  try {
    return readdirSync(dir).filter((n) => n.startsWith(`${runTag}-`)).sort();
  } catch {
    return [];
  }
}

/** Removes the run's files (after they were counted as leaks): the launcher never leaves one behind. */
export function sweepShmFiles(runTag: string, dir = '/dev/shm'): number {
  const names = shmFilesOf(runTag, dir);
  for (const n of names) rmSync(join(dir, n), { force: true });
  return names.length;
}
