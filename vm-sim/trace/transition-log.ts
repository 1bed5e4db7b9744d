/**
 * HDMABUF_TRANSITION_LOG=DIR: every process that starts the log (the test
 * workers through test/transition-coverage/setup.ts, the backend and every
 * VM through their entry points) appends each distinct transition it takes,
 * `machine from event` one per line, to DIR/<pid>.log as soon as it first
 * takes it, so a process that is killed still leaves what it took.
 * scripts/transition-coverage.ts runs tests with it and compares the union
 * with the declared tables (protocol/machines).
 */
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { observeTransitions, type StateMachine } from '../../protocol/state-machine.ts';

/** The environment variable naming the log directory. */
export const TRANSITION_LOG_ENV = 'HDMABUF_TRANSITION_LOG';

/** One transition as a log line: `machine from event`. */
export function transitionKey(machine: string, from: string, event: string): string {
  return `${machine} ${from} ${event}`;
}

/** Starts recording this process's transitions into `dir` (default: $HDMABUF_TRANSITION_LOG); nothing when unset. */
export function startTransitionLog(dir: string | undefined = process.env[TRANSITION_LOG_ENV]): void {
  if (!dir) return;
  const file = join(dir, `${process.pid}.log`);
  const seen = new Set<string>();
  let warned = false;
  observeTransitions((machine, from, event) => {
    const key = transitionKey(machine, from, event);
    if (seen.has(key)) return;
    seen.add(key);
    try {
      appendFileSync(file, `${key}\n`);
    } catch (e) {
      // Never fails the code that took the transition; the coverage check then reports it as not taken.
      if (!warned) process.stderr.write(`transition log: cannot write ${file}: ${(e as Error).message}\n`);
      warned = true;
    }
  });
}

/** Every declared transition of `machines`, as log lines (one per state a row leaves from). */
export function declaredTransitions(machines: ReadonlyArray<StateMachine<string, string>>): string[] {
  return machines.flatMap((m) => m.decl.transitions.flatMap((t) => t.from.map((from) => transitionKey(m.decl.id, from, t.event))));
}

/** The union of the transitions recorded in `dir` by every process. */
export function readTransitionLogs(dir: string): Set<string> {
  const taken = new Set<string>();
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.log')) continue;
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) if (line) taken.add(line);
  }
  return taken;
}

/** The declared transitions that were never taken, in declaration order. */
export function untakenTransitions(declared: readonly string[], taken: ReadonlySet<string>): string[] {
  return declared.filter((k) => !taken.has(k));
}
