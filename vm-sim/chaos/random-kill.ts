/**
 * Random-kill runs: the built-in scenarios, each run SIGKILLing one random
 * process of it (the backend or a VM) at a random time, as a user trying
 * to break it would (a random point of the scenario's steps, as long as one
 * run of it without a kill took on this machine). For each run it checks,
 * from outside:
 *
 *   - no survivor crashed: every other process ended through the close
 *     cascade (`shutdown`), or was killed by the scenario itself; none
 *     `died` or reported an unexpected error (`fatal`, exit 4);
 *   - nothing leaked: no pid of the run still running and no /dev/shm file
 *     with the run's tag once the CLI exited, and the result's own leak
 *     count of processes and files is 0;
 *   - no hang: the CLI exits within --hang-ms;
 *   - the result names the dead process (its `exits` list has it, killed by
 *     SIGKILL), unless the kill came after that process had already ended.
 *
 *   tsx vm-sim/chaos/random-kill.ts [--runs 60] [--seed 1] [--hang-ms 180000] [--json]
 *
 * Exits 0 when every run passed those checks, 1 otherwise.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ProcessExit } from '../launcher/exits.ts';
import { shmFilesOf, sweepShmFiles } from '../launcher/leaks.ts';
import type { RunResult } from '../launcher/result.ts';
import { isRunning } from '../process/spawn/child.ts';
import { prng } from '../prng.ts';

const BIN = fileURLToPath(new URL('../bin/hdmabuf.js', import.meta.url));

/**
 * The built-ins with parameters that keep one run short; `ms` is about how
 * long the steps run where no calibration run measured it (calibrate).
 */
const SCENARIOS: ReadonlyArray<{ name: string; params: string[]; ms: number }> = [
  { name: 'compositor', params: ['frames=200'], ms: 4000 },
  { name: 'fan-out', params: [], ms: 3000 },
  { name: 'importer-crash', params: [], ms: 800 },
  { name: 'exporter-crash', params: [], ms: 800 },
  { name: 'delayed-unexport', params: [], ms: 1000 },
  { name: 'big-buffer', params: [], ms: 6000 },
  { name: 'many-exports', params: ['count=1000'], ms: 4000 },
  { name: 'fences', params: ['frames=300'], ms: 6000 },
  { name: 'move', params: ['frames=300', 'moves=20'], ms: 6000 },
  { name: 'copies', params: [], ms: 1500 },
];


/** The outcome of one run. */
interface Outcome {
  run: number;
  scenario: string;
  victim: string;
  victimPid: number;
  killAfterMs: number;
  /** The CLI's exit code (null if it hung and was killed). */
  code: number | null;
  hung: boolean;
  /** The victim had already ended when the kill came (nothing to name). */
  killMissed: boolean;
  named: boolean;
  crashedSurvivors: string[];
  leakedPids: number[];
  leakedFiles: number;
  resultLeaks: RunResult['leaks'] | undefined;
  problems: string[];
}

function pidsOf(started: string): Array<{ name: string; pid: number }> {
  const out: Array<{ name: string; pid: number }> = [];
  const hv = /hv pid (\d+)/.exec(started);
  if (hv) out.push({ name: 'hv', pid: Number(hv[1]) });
  for (const m of started.matchAll(/([\w.-]+) \(dom\d+\) pid (\d+)/g)) out.push({ name: m[1]!, pid: Number(m[2]) });
  return out;
}

/** Starts one CLI run of `sc`; resolves its 'started: ' line (undefined if it exited first) and its exit. */
function startRun(sc: (typeof SCENARIOS)[number], tag: string) {
  const args = [BIN, 'run', sc.name, '--json', '--run-tag', tag, ...sc.params.flatMap((p) => ['--param', p])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (c: Buffer) => { out.stdout += c.toString(); });
  const started = new Promise<string | undefined>((resolve) => {
    child.stderr.on('data', (c: Buffer) => {
      out.stderr += c.toString();
      const line = out.stderr.split('\n').find((l) => l.startsWith('started: '));
      if (line) resolve(line);
    });
    child.once('exit', () => resolve(undefined));
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  return { child, out, started, exited };
}

/**
 * How long the steps of `sc` run on this machine (from its 'started' line
 * to its exit), measured by one run without a kill: a kill at a random
 * point of a fixed guess landed after most runs had ended on a fast machine
 * (44 of 60 did).
 */
async function calibrate(sc: (typeof SCENARIOS)[number]): Promise<number> {
  const tag = `hdmabuf-chaos-${randomBytes(4).toString('hex')}`;
  const run = startRun(sc, tag);
  await run.started;
  const t0 = performance.now();
  await run.exited;
  sweepShmFiles(tag);
  return Math.max(50, Math.round(performance.now() - t0));
}

async function oneRun(index: number, rand: () => number, hangMs: number, stepsMs: Map<string, number>): Promise<Outcome> {
  const sc = SCENARIOS[Math.floor(rand() * SCENARIOS.length)]!;
  // Calibrated the first time the scenario comes up (before its run's random draws, which stay the seed's).
  if (!stepsMs.has(sc.name)) {
    const ms = await calibrate(sc);
    stepsMs.set(sc.name, ms);
    process.stderr.write(`    ${sc.name}: its steps run ${ms} ms without a kill\n`);
  }
  const pick = rand();
  const killAt = rand();
  const tag = `hdmabuf-chaos-${randomBytes(4).toString('hex')}`;
  const { child, out, started, exited } = startRun(sc, tag);
  const outcome: Outcome = {
    run: index, scenario: sc.name, victim: '', victimPid: 0, killAfterMs: 0, code: null, hung: false, killMissed: false,
    named: false, crashedSurvivors: [], leakedPids: [], leakedFiles: 0, resultLeaks: undefined, problems: [],
  };
  const line = await started;
  const procs = line ? pidsOf(line) : [];
  if (procs.length > 0) {
    const victim = procs[Math.floor(pick * procs.length)]!;
    outcome.victim = victim.name;
    outcome.victimPid = victim.pid;
    outcome.killAfterMs = Math.round(killAt * (stepsMs.get(sc.name) ?? sc.ms));
    await new Promise((r) => setTimeout(r, outcome.killAfterMs));
    try { process.kill(victim.pid, 'SIGKILL'); } catch { outcome.killMissed = true; }
  } else {
    outcome.problems.push('the run never reported its pids');
  }
  const hang = setTimeout(() => { outcome.hung = true; child.kill('SIGKILL'); }, hangMs);
  const exit = await exited;
  clearTimeout(hang);
  outcome.code = exit.code;
  if (outcome.hung) outcome.problems.push(`hung: no exit within ${hangMs} ms`);
  if (exit.code !== 0 && exit.code !== 1) outcome.problems.push(`CLI exit ${exit.code ?? exit.signal}${/\n\s+at /.test(out.stderr) ? ' with a stack trace' : ''}`);
  let result: RunResult | undefined;
  try {
    result = JSON.parse(out.stdout) as RunResult;
  } catch {
    outcome.problems.push('no JSON result');
  }
  if (result) {
    outcome.resultLeaks = result.leaks;
    const exits: ProcessExit[] = result.exits ?? [];
    const mine = exits.find((e) => e.pid === outcome.victimPid);
    if (mine && mine.cause !== 'died') outcome.killMissed = true; // it had ended (or was being shut down) before the kill
    outcome.named = Boolean(mine && mine.cause === 'died' && mine.signal === 'SIGKILL');
    if (!outcome.killMissed && !outcome.named) outcome.problems.push(`the result does not name ${outcome.victim} (pid ${outcome.victimPid}) as killed`);
    for (const e of exits) {
      if (e.pid === outcome.victimPid) continue;
      if (e.cause === 'died' || e.cause === 'forced' || e.fatal || (e.cause === 'shutdown' && e.code !== 0)) {
        outcome.crashedSurvivors.push(`${e.name}: ${e.cause}, ${e.signal ?? `code ${e.code}`}${e.fatal ? `, ${e.fatal.kind} ${e.fatal.code}: ${e.fatal.message}` : ''}`);
      }
    }
    if (result.leaks.processes !== 0) outcome.problems.push(`result counts ${result.leaks.processes} leaked process(es)`);
    if (result.leaks.shmFiles !== 0) outcome.problems.push(`result counts ${result.leaks.shmFiles} leaked shm file(s)`);
  }
  if (/unhandled|uncaught/i.test(out.stderr)) outcome.problems.push('unhandled error on stderr');
  if (outcome.crashedSurvivors.length) outcome.problems.push(`crashed survivors: ${outcome.crashedSurvivors.join('; ')}`);
  outcome.leakedPids = procs.map((p) => p.pid).filter(isRunning);
  outcome.leakedFiles = shmFilesOf(tag).length;
  if (outcome.leakedPids.length) outcome.problems.push(`pids still running: ${outcome.leakedPids.join(', ')}`);
  if (outcome.leakedFiles) outcome.problems.push(`${outcome.leakedFiles} shm file(s) of the run left`);
  for (const pid of outcome.leakedPids) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  sweepShmFiles(tag);
  return outcome;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string' }, seed: { type: 'string' }, 'hang-ms': { type: 'string' }, json: { type: 'boolean' } } });
  const runs = Number(values.runs ?? 60);
  const seed = Number(values.seed ?? 1);
  const hangMs = Number(values['hang-ms'] ?? 180_000);
  const rand = prng(seed);
  const stepsMs = new Map<string, number>();
  const outcomes: Outcome[] = [];
  for (let i = 1; i <= runs; i++) {
    const o = await oneRun(i, rand, hangMs, stepsMs);
    outcomes.push(o);
    process.stderr.write(`${String(i).padStart(3)} ${o.scenario.padEnd(16)} kill ${o.victim.padEnd(10)} at +${String(o.killAfterMs).padStart(5)} ms: exit ${o.code}, ${o.killMissed ? 'kill came after it ended' : o.named ? 'named' : 'NOT named'}${o.problems.length ? `  PROBLEMS: ${o.problems.join(' | ')}` : ''}\n`);
  }
  const summary = {
    runs, seed,
    crashedSurvivors: outcomes.filter((o) => o.crashedSurvivors.length > 0).length,
    leakedRuns: outcomes.filter((o) => o.leakedPids.length > 0 || o.leakedFiles > 0 || (o.resultLeaks && (o.resultLeaks.processes !== 0 || o.resultLeaks.shmFiles !== 0))).length,
    hangs: outcomes.filter((o) => o.hung).length,
    named: outcomes.filter((o) => o.named).length,
    killsAfterTheEnd: outcomes.filter((o) => o.killMissed).length,
    runsWithProblems: outcomes.filter((o) => o.problems.length > 0).length,
    byVictim: Object.fromEntries(['hv', 'vm'].map((k) => [k, outcomes.filter((o) => (o.victim === 'hv') === (k === 'hv')).length])),
  };
  process.stdout.write(`${JSON.stringify(values.json ? { summary, outcomes } : summary, null, values.json ? undefined : 2)}\n`);
  process.exit(summary.runsWithProblems === 0 ? 0 : 1);
}

main().catch((e: unknown) => {
  process.stderr.write(`random-kill: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(2);
});
