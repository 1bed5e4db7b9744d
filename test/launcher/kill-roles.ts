/**
 * Per-role kill tests: a built-in scenario runs for real (backend and VM
 * processes, this test process as the launcher, runScenario in-process) and
 * one of its processes is SIGKILLed at a point chosen by an event of the
 * run, never by the clock: the first progress line that matches (a step
 * that completed, "✓ #1 ...", or the frame counter a VM reports while it
 * streams). The launcher hears of a step only once it completed, and kills
 * before it starts the next one, so the point is the same in every run.
 *
 * expectSurvived then holds the run to what a user is promised:
 *   - the victim is named in the result's `exits` (died, SIGKILL) and in a
 *     failed check;
 *   - every other process survived: it ended through the close cascade
 *     (`shutdown`, exit code 0, no `fatal` report);
 *   - the run failed with the death, typed: a step failed with the
 *     victim's own death (ERR_CHILD_EXITED) or the peer's (ERR_PEER_GONE,
 *     ERR_NO_SUCH_DOMAIN, ERR_CLOSED), or the run with the backend's
 *     (ERR_BACKEND_DIED); steps already under way may fail besides with what
 *     the death left (e.g. a grant the dead backend could not end), but none
 *     timed out or failed with an internal error;
 *   - nothing leaked: no busy grant or mapping once the VMs shut down (what
 *     the survivors still held when the run stopped is reported apart, as
 *     is what a live importer holds of a dead exporter, SPEC.md 11.4), no
 *     process, no /dev/shm file of the run; when the backend is the victim,
 *     busy grants and mappings are "not measured" (-1, with the reason) and
 *     its files were removed by the launcher.
 */
import { expect } from 'vitest';
import { runScenario } from '../../vm-sim/launcher/execute.ts';
import type { RunResult } from '../../vm-sim/launcher/result.ts';
import { builtinScenario } from '../../vm-sim/scenarios/builtin/index.ts';
import type { Params } from '../../vm-sim/scenarios/types.ts';
import { shmFiles, stillRunning } from './cli.ts';

/** Where to kill: the first progress line matching `at`. */
export interface KillPoint {
  name: string;
  at: RegExp;
  /** Parameters that make the point reachable (e.g. a stream long enough to be killed mid-way). */
  params: Params;
}

/** The error codes a step may fail with when a process of the run died. */
export const DEATH_CODES = /^(ERR_CHILD_EXITED|ERR_PEER_GONE|ERR_NO_SUCH_DOMAIN|ERR_CLOSED|ERR_BACKEND_DIED)\b/;

/** What a run with a kill produced. */
export interface KilledRun {
  result: RunResult;
  victimPid: number;
  /** Every pid of the run (backend and VMs). */
  pids: number[];
  /** Progress lines, for failure messages. */
  lines: string[];
}

/** Runs `scenario` and SIGKILLs `victim` ('hv' or a domain name) at the first progress line matching `point.at`. */
export async function runAndKill(scenario: string, victim: string, point: KillPoint): Promise<KilledRun> {
  const sc = builtinScenario(scenario);
  if (!sc) throw new Error(`no built-in ${scenario}`);
  const byName = new Map<string, number>();
  const lines: string[] = [];
  let victimPid = 0;
  const result = await runScenario(sc, {
    params: point.params,
    progress: (line) => {
      lines.push(line);
      if (line.startsWith('started: ')) {
        byName.set('hv', Number(/hv pid (\d+)/.exec(line)![1]));
        for (const m of line.matchAll(/([\w.-]+) \(dom\d+\) pid (\d+)/g)) byName.set(m[1]!, Number(m[2]));
        return;
      }
      if (victimPid === 0 && point.at.test(line)) {
        victimPid = byName.get(victim) ?? -1;
        if (victimPid > 0) process.kill(victimPid, 'SIGKILL');
      }
    },
  });
  return { result, victimPid, pids: [...byName.values()], lines };
}

/** Checks a killed run (see the file's comment). */
export function expectSurvived(run: KilledRun, victim: string): void {
  const { result } = run;
  const why = `progress:\n${run.lines.join('\n')}`;
  expect(run.victimPid, `the kill point was never reached; ${why}`).toBeGreaterThan(0);
  expect(result.ok).toBe(false);
  // Named: how and that it was not the cascade's doing.
  expect(result.exits.find((e) => e.pid === run.victimPid), why).toMatchObject({ name: victim, cause: 'died', signal: 'SIGKILL' });
  expect(result.checks.find((c) => c.name === `${victim} died during the run`), why).toMatchObject({ ok: false });
  // Survivors: every other process ended through the cascade, cleanly.
  const others = result.exits.filter((e) => e.pid !== run.victimPid);
  expect(others.map((e) => e.name).sort(), why).toEqual(run.pids.filter((p) => p !== run.victimPid).map((p) => result.exits.find((e) => e.pid === p)?.name).sort());
  for (const e of others) expect(e, why).toMatchObject({ cause: 'shutdown', code: 0, signal: null });
  for (const e of others) expect(e.fatal, why).toBeUndefined();
  // The failed steps failed with the death, typed.
  const failedSteps = result.checks.filter((c) => !c.ok && (c.name.startsWith('#') || c.name === 'run'));
  expect(failedSteps.filter((c) => DEATH_CODES.test(c.detail)).length, `no step failed with the death; ${why}`).toBeGreaterThan(0);
  for (const c of failedSteps) expect(c.detail, `${c.name}; ${why}`).not.toMatch(/^(ERR_TIMEOUT|ERR_INTERNAL)\b/);
  // Nothing leaked.
  expect(stillRunning(run.pids)).toEqual([]);
  expect(shmFiles(String(result.stats.runTag))).toEqual([]);
  if (victim === 'hv') {
    expect(result.leaks).toEqual({ busyGrants: -1, mappings: -1, processes: 0, shmFiles: 0 });
    expect(result.stats.notMeasured).toMatchObject({ 'leaks.busyGrants': expect.stringMatching(/^not measured: /), bytesCopied: expect.stringMatching(/^not measured: /) });
  } else {
    expect(result.leaks, why).toEqual({ busyGrants: 0, mappings: 0, processes: 0, shmFiles: 0 });
  }
}
