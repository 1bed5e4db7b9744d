/**
 * Leak measurement of a run, for real:
 *   - busyGrants, mappings: HV_STATS over the control connection just
 *     before shutdown (entries still marked GTF_reading/GTF_writing, and
 *     live maptrack entries, summed over every domain the backend knows);
 *   - processes: the run's processes that did not exit within the grace
 *     period of the close cascade (counted BEFORE they are SIGKILLed: a
 *     process that had to be killed is a leak), plus any still running after
 *     every child was reaped;
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

/** Tags of the runs of this process not yet stopped: swept on any exit, even a forced one. */
const activeRunTags = new Set<string>();

/** Registers a run's tag so that exitSweep() removes its files whatever ends the process. */
export function rememberRunTag(runTag: string): void {
  activeRunTags.add(runTag);
  installExitSweep();
}

/** The run was stopped (its files already swept). */
export function forgetRunTag(runTag: string): void {
  activeRunTags.delete(runTag);
}

/**
 * Removes the files of every run not yet stopped; returns how many. Called
 * on the paths that end the launcher without the close cascade (a second
 * Ctrl-C, process.exit): the backend, killed with the others, can no longer
 * remove them itself.
 */
export function sweepActiveRuns(dir = '/dev/shm'): number {
  let n = 0;
  for (const tag of activeRunTags) n += sweepShmFiles(tag, dir);
  return n;
}

let exitSweepInstalled = false;
function installExitSweep(): void {
  if (exitSweepInstalled) return;
  exitSweepInstalled = true;
  // 'exit' handlers run synchronously on process.exit and on a normal end: rmSync is synchronous.
  process.on('exit', () => { sweepActiveRuns(); });
}
