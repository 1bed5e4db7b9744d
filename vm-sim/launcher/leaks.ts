/**
 * Leak measurement of a run, for real:
 *   - busyGrants, mappings: HV_STATS over the control connection just
 *     before shutdown (entries still marked GTF_reading/GTF_writing, and
 *     live maptrack entries, summed over every domain the backend knows),
 *     less what is held there by design: the pages of a dead exporter that a
 *     live importer still maps (SPEC.md 11.4), reported apart; when the
 *     run stopped before its scenario's end (interrupted, a failed check,
 *     a process that died), what the survivors held at that snapshot was
 *     in use, not leaked (execute.ts reports it as heldWhenStopped): the
 *     leak is then what the backend still counts once every VM has shut
 *     down (a second HV_STATS, before the backend's SIGTERM);
 *     -1 when the backend could not answer (the result says why);
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
import { isRunning } from '../process/spawn/child.ts';

/** The four leak counts of a result. */
export interface Leaks {
  busyGrants: number;
  mappings: number;
  processes: number;
  shmFiles: number;
}

/** State held at the snapshot by design, not leaked (SPEC.md 11.4). */
export interface HeldByDesign {
  /** Busy grant entries of dying or dead domains: their pages are still mapped by a live importer. */
  busyGrants: number;
  /** Mappings of live domains whose granter is dying or dead (HV_STATS `mappingsOfDead`). */
  mappings: number;
}

/**
 * Busy grants and mappings of a HV_STATS snapshot, split: what a surviving
 * importer still holds of a dead exporter's pages is held by design (SPEC.md
 * 11.4: the pages stay readable until it releases them); everything else
 * busy or mapped at the end of the scenario is a leak.
 */
export function hvLeaks(stats: HvStatsBody): Pick<Leaks, 'busyGrants' | 'mappings'> & { heldByDesign: HeldByDesign } {
  let busyGrants = 0;
  let mappings = 0;
  const heldByDesign: HeldByDesign = { busyGrants: 0, mappings: 0 };
  for (const d of stats.domains) {
    const dead = d.state === 'dying' || d.state === 'dead';
    if (dead) heldByDesign.busyGrants += d.busyGrants;
    else busyGrants += d.busyGrants;
    heldByDesign.mappings += d.mappingsOfDead;
    mappings += d.mappings - d.mappingsOfDead;
  }
  return { busyGrants, mappings, heldByDesign };
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
