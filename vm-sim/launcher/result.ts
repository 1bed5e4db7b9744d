/**
 * The result of a run, exactly what `hdmabuf run --json` prints:
 *
 *   { scenario, ok, checks: [{ name, ok, detail }], stats: { ... },
 *     leaks: { busyGrants, mappings, processes, shmFiles },
 *     exits: [{ name, role, pid, code, signal, atMs, cause, fatal? }] }
 *
 * ok is true only when every check passed and every leak count is 0.
 */
import type { ProcessExit } from './exits.ts';
import type { Leaks } from './leaks.ts';

/** One check of a run's result. */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** A run's result. */
export interface RunResult {
  scenario: string;
  ok: boolean;
  checks: Check[];
  stats: Record<string, unknown>;
  leaks: Leaks;
  /** How every process of the run ended (exits.ts); a process that `died` also fails a check. */
  exits: ProcessExit[];
}

/** True when every check passed and no leak was found. */
export function resultOk(checks: readonly Check[], leaks: Leaks): boolean {
  return checks.length > 0 && checks.every((c) => c.ok) && Object.values(leaks).every((n) => n === 0);
}

/** Exit code of the CLI for a result: 0 only when ok. */
export function exitCodeOf(result: RunResult): number {
  return result.ok ? 0 : 1;
}
