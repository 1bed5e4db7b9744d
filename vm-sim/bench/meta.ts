/**
 * The machine and the moment of a benchmark run, recorded with its figures
 * so that a reader can judge them: the commit, the date, the load average
 * before and after, the cores and the Node version.
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, release, totalmem } from 'node:os';
import type { RunMeta } from './types.ts';

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/** The load average, rounded to what it means. */
export function loadNow(): number[] {
  return loadavg().map((x) => Math.round(x * 100) / 100);
}

/** What is known when a run starts (load.end is filled in by the caller at the end). */
export function runMeta(): RunMeta {
  const c = cpus();
  return {
    commit: { sha: git(['rev-parse', 'HEAD']) ?? 'unknown', dirty: (git(['status', '--porcelain', '--untracked-files=no']) ?? '') !== '' },
    date: new Date().toISOString(),
    load: { start: loadNow(), end: [] },
    machine: {
      cpus: c.length, cpuModel: c[0]?.model.trim() ?? 'unknown', memGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version, platform: process.platform, kernel: release(),
    },
  };
}
