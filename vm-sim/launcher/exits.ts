/**
 * How each process of a run ended, as the launcher saw it: which process
 * (the backend or a VM, by name and pid), how (exit code or signal), when
 * (ms since the run started), and why:
 *
 *   - `died`: it ended on its own while the run was going on (killed from
 *     outside, crashed, or a VM that reported an unexpected error, whose
 *     report is kept in `fatal`). A check of the result names it.
 *   - `killed by the scenario`: a `kill` step (a crash the scenario asked for).
 *   - `shutdown`: it exited when the close cascade asked it to
 *     (kernel.shutdown for a VM, SIGTERM for the backend).
 *   - `forced`: it did not exit within the grace period of the cascade and
 *     was SIGKILLed: a leaked process (counted in leaks.processes).
 */
import type { ChildExit } from '../process/spawn/child.ts';

/** Why a process of a run ended. */
export type ExitCause = 'died' | 'killed by the scenario' | 'shutdown' | 'forced';

/** A VM's own report of an unexpected error (its `fatal` event, vm-main.ts). */
export interface FatalReport {
  kind: string;
  code: string;
  message: string;
}

/** One process that ended. */
export interface ProcessExit {
  name: string;
  /** The backend, a VM of this project, or an outside domain (a scenario's own command, SPEC.md Appendix B). */
  role: 'hv' | 'vm' | 'outside';
  pid: number;
  /** Exit code, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Milliseconds since the run started. */
  atMs: number;
  cause: ExitCause;
  fatal?: FatalReport;
}

/** "hv (pid 42) died: signal SIGKILL at 1234 ms". */
export function describeProcessExit(e: ProcessExit): string {
  const how = e.signal ? `signal ${e.signal}` : `exit code ${e.code}`;
  const fatal = e.fatal ? ` after an unexpected error (${e.fatal.kind}: ${e.fatal.code}: ${e.fatal.message})` : '';
  return `${e.name} (pid ${e.pid}) ${e.cause}: ${how} at ${e.atMs} ms${fatal}`;
}

/** Builds the record of a child's exit. */
export function processExit(name: string, role: ProcessExit['role'], pid: number, exit: ChildExit, atMs: number, cause: ExitCause, fatal: FatalReport | undefined): ProcessExit {
  return { name, role, pid, code: exit.code, signal: exit.signal, atMs: Math.round(atMs), cause, ...(fatal ? { fatal } : {}) };
}
