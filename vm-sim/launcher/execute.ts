/**
 * Runs a scenario end to end: start the backend and the VMs, run the steps
 * (and the scenario's own code), gather statistics, stop everything
 * (measuring leaks for real), and write the trace and diagram if asked.
 * Whatever happens (a failed step, a VM that will not start, SIGINT), the
 * run is stopped and a result comes back; nothing of the run remains.
 */
import { PAGE_SIZE } from '../../protocol/limits.ts';
import { ScenarioContext } from '../scenarios/context.ts';
import { paramDefaults } from '../scenarios/params.ts';
import { runStep, StepFailed } from '../scenarios/steps/index.ts';
import { badValue, int, substitute } from '../scenarios/steps/values.ts';
import type { DomainSpec, Params, Scenario } from '../scenarios/types.ts';
import { parseBytes } from '../scenarios/units.ts';
import { validateDomains } from '../scenarios/validate.ts';
import { nowUs } from '../trace/clock.ts';
import { liveChildren, reapAll } from '../process/spawn/child.ts';
import { describeProcessExit, type ProcessExit } from './exits.ts';
import { shmFilesOf, sweepShmFiles, type Leaks } from './leaks.ts';
import { resultOk, type RunResult } from './result.ts';
import { summaryLines } from './summary.ts';
import { newRunTag } from './run-tag.ts';
import { trafficTotals } from './run-stats.ts';
import { Run, type DomainLaunch, type StopReport } from './run.ts';

/** Options of runScenario. */
export interface RunScenarioOptions {
  /** Parameter overrides. */
  params?: Params;
  runTag?: string;
  /** Write a Chrome trace here. */
  tracePath?: string;
  /** Write a Mermaid sequence diagram here. */
  mermaidPath?: string;
  /** Most lines of the diagram (0: no limit; default trace/mermaid.ts DEFAULT_MAX_LINES). */
  mermaidMaxLines?: number;
  /** Write the run report (one self-contained HTML file) here. */
  reportPath?: string;
  /** Called once every process of the run is up, with what an observer needs to watch it (SPEC.md 9.6). */
  onStarted?: (backend: { url: string; observerToken: string }) => void;
  /** Progress lines. */
  progress?: (line: string) => void;
  /** Aborts the run (SIGINT, SIGTERM). */
  signal?: AbortSignal;
  echoOutput?: boolean;
}

/** The domains of a scenario with parameters applied: pages and grant frames. */
export function resolveDomains(scenario: Scenario, params: Params): DomainLaunch[] {
  const specs: DomainSpec[] = typeof scenario.domains === 'function'
    ? validateDomains(scenario.domains(params), scenario.name)
    : substitute(scenario.domains, params);
  return specs.map((d) => {
    const bytes = parseBytes(d.memory, `domain ${d.name} memory`);
    const memPages = Math.ceil(bytes / PAGE_SIZE);
    if (memPages < 1) throw badValue(`domain ${d.name}: memory must be at least one page`);
    return {
      name: d.name, memPages, ...(d.maxGrantFrames !== undefined ? { maxGrantFrames: int(d.maxGrantFrames, `domain ${d.name} maxGrantFrames`) } : {}),
      ...(d.command !== undefined ? { command: d.command } : {}),
    };
  });
}

const NO_LEAKS_MEASURED: Leaks = { busyGrants: -1, mappings: -1, processes: -1, shmFiles: -1 };

/** Runs a scenario; never throws for a failing run (the result says what failed). */
export async function runScenario(scenario: Scenario, options: RunScenarioOptions = {}): Promise<RunResult> {
  const progress = options.progress ?? (() => undefined);
  const params: Params = { ...paramDefaults(scenario), ...(options.params ?? {}) };
  const runTag = options.runTag ?? newRunTag();
  const signal = options.signal ?? new AbortController().signal;
  const t0 = performance.now();
  const checks: RunResult['checks'] = [];
  const stats: Record<string, unknown> = { runTag, params };
  let run: Run | undefined;
  let ctx: ScenarioContext | undefined;
  let report: StopReport | undefined;
  let bodyFailed = false;

  try {
    const domains = resolveDomains(scenario, params);
    const outsideCount = domains.filter((d) => d.command).length;
    progress(`${scenario.name}: starting hv and ${domains.length - outsideCount} VM(s)${outsideCount ? ` and ${outsideCount} outside domain(s)` : ''}, run ${runTag}`);
    run = await Run.start({ runTag, trace: Boolean(options.tracePath || options.mermaidPath || options.reportPath), log: progress, ...(options.echoOutput !== undefined ? { echoOutput: options.echoOutput } : {}) });
    const vms = await run.addDomains(domains);
    const started = domains.map((d) => run!.outside(d.name) ?? run!.vm(d.name));
    stats.domains = started.map((v) => ({ name: v.name, domid: v.domid, pid: v.pid, memPages: v.memPages, ...('command' in v ? { outside: v.command.join(' ') } : {}) }));
    stats.pids = { launcher: process.pid, hv: run.hv.pid };
    progress(`started: launcher pid ${process.pid}, hv pid ${run.hv.pid}, ${started.map((v) => `${v.name} (dom${v.domid}${'command' in v ? ', outside' : ''}) pid ${v.pid}`).join(', ')}`);
    progress(`watch it: hdmabuf top --url ${run.hv.url} --token ${run.hv.observerToken}`);
    options.onStarted?.({ url: run.hv.url, observerToken: run.hv.observerToken });
    for (const vm of vms) {
      vm.listen((e) => {
        if (e.name !== 'progress') return;
        const d = e.data as { what?: string; done?: number; total?: number };
        progress(`${vm.name}: ${d.what ?? 'progress'} ${d.done ?? '?'}/${d.total ?? '?'}`);
      });
    }
    ctx = new ScenarioContext({ run, params, signal, runStep, progress });
    await untilAborted(untilBackendDied(runBody(scenario, ctx), run), signal);
  } catch (e) {
    bodyFailed = true;
    // A failed step is already a check; anything else (a VM that would not start, SIGINT) becomes one.
    if (!(e instanceof StepFailed)) {
      const err = e as Error & { code?: string };
      checks.push({ name: signal.aborted ? 'run interrupted' : 'run', ok: false, detail: `${err.code ?? err.name}: ${err.message}` });
    }
  }

  if (ctx) {
    // Steps nobody awaited (an unexport with wait: none) finish first, unless the run was interrupted.
    if (!signal.aborted) await Promise.allSettled(ctx.background);
    Object.assign(stats, ctx.stats);
  }
  if (run) {
    progress('stopping: measuring leaks, shutting every process down');
    // Decided before the cascade: its own checks and exits must not count.
    const early = stoppedEarly(signal, [...(ctx?.checks ?? []), ...checks], run.exits);
    report = await run.stop();
    if (early && report.hvStats && report.afterVmsExited) {
      // The survivors still held what the scenario had not yet released when it stopped: that is not a leak. What
      // the backend still counted once every VM had shut down is (no VM is left to hold anything).
      stats.heldWhenStopped = { busyGrants: report.leaks.busyGrants, mappings: report.leaks.mappings };
      report.leaks.busyGrants = report.afterVmsExited.busyGrants;
      report.leaks.mappings = report.afterVmsExited.mappings;
    }
    const notMeasured: Record<string, string> = {};
    if (report.hvStats) {
      const t = trafficTotals(report.hvStats);
      Object.assign(stats, { bytesCopied: t.bytesCopied, routedBytes: t.routedBytes, grantCopyBytes: t.grantCopyBytes, wireBytes: t.wireBytes, wireFrames: t.wireFrames, largestFrame: t.largestFrame });
      if (t.bytesCopied > 0) stats.copiedByDomain = t.copiedByDomain;
    } else {
      // Without the backend's answer these figures are unknown, not 0.
      const why = `not measured: ${report.hvStatsError ?? 'HV_STATS failed'}`;
      for (const k of ['bytesCopied', 'wireBytes', 'leaks.busyGrants', 'leaks.mappings']) notMeasured[k] = why;
    }
    if (report.heldByDesign) stats.heldByDesign = report.heldByDesign;
    if (report.filesOfDeadBackend.length) stats.filesOfDeadBackend = report.filesOfDeadBackend.length;
    if (Object.keys(notMeasured).length) stats.notMeasured = notMeasured;
  } else {
    // Start failed: whatever got started is reaped, whatever got created is swept.
    await reapAll(3000);
  }

  const allChecks = [...(ctx?.checks ?? []), ...checks];
  const exits = run?.exits ?? [];
  if (bodyFailed && !signal.aborted) allChecks.push(...backendDeathCheck(exits, allChecks));
  if (report) allChecks.push(...endChecks(report, stats), ...exitChecks(exits));
  const leaks = report?.leaks ?? { ...NO_LEAKS_MEASURED, processes: liveChildren().length, shmFiles: shmFilesOf(runTag).length };
  if (!report) sweepShmFiles(runTag);
  stats.durationMs = Math.round(performance.now() - t0);

  if (run?.trace) {
    const meta = { scenario: scenario.name, runTag, params };
    if (options.tracePath) {
      const events = run.trace.writeChrome(options.tracePath, meta);
      stats.trace = { file: options.tracePath, events };
    }
    if (options.mermaidPath) {
      run.trace.writeMermaid(options.mermaidPath, `${scenario.name} (run ${runTag})`, options.mermaidMaxLines);
      stats.mermaid = { file: options.mermaidPath };
    }
  }
  const result: RunResult = { scenario: scenario.name, ok: resultOk(allChecks, leaks), checks: allChecks, stats, leaks, exits };
  if (run?.trace && options.reportPath) {
    // Named before writing, so that the report's own summary lists it.
    stats.report = { file: options.reportPath };
    run.trace.writeReport(options.reportPath, result, summaryLines(result));
  }
  return result;
}

/** A run stopped before its scenario's end: interrupted, a failed check, or a process that died. */
function stoppedEarly(signal: AbortSignal, checks: readonly RunResult['checks'][number][], exits: readonly ProcessExit[]): boolean {
  return signal.aborted || checks.some((c) => !c.ok) || exits.some((e) => e.cause === 'died');
}

async function runBody(scenario: Scenario, ctx: ScenarioContext): Promise<void> {
  const t0 = nowUs();
  for (const step of scenario.steps ?? []) await ctx.step(step);
  if (scenario.run) await scenario.run(ctx);
  ctx.run.trace?.span(`scenario ${scenario.name}`, 'step', t0);
}

/**
 * Rejects with ERR_BACKEND_DIED as soon as the backend dies during the run:
 * every step after that would fail anyway, and the result must say that the
 * backend died rather than what each VM saw of it.
 */
function untilBackendDied<T>(p: Promise<T>, run: Run): Promise<T> {
  // When the backend wins the race, the step's own rejection follows and is not the run's error; the race still sees it otherwise.
  p.catch(() => undefined);
  return Promise.race([
    p,
    run.backendDied.then((e): never => {
      throw Object.assign(new Error(describeProcessExit(e)), { code: 'ERR_BACKEND_DIED' });
    }),
  ]);
}

/**
 * The run's failure put down to the backend's death, when the backend died
 * during the run and nothing says so yet: a step can fail of what the death
 * left (a grant that can no longer end) before the launcher has heard of the
 * exit, and then untilBackendDied lost the race. Decided once stop() has
 * reaped every process, so the outcome does not depend on that race.
 */
export function backendDeathCheck(exits: readonly ProcessExit[], checks: readonly RunResult['checks'][number][]): RunResult['checks'] {
  const death = exits.find((e) => e.role === 'hv' && e.cause === 'died');
  if (!death || checks.some((c) => c.detail.startsWith('ERR_BACKEND_DIED'))) return [];
  return [{ name: 'run', ok: false, detail: `ERR_BACKEND_DIED: ${describeProcessExit(death)}` }];
}

/** Rejects as soon as the signal aborts (the run is then stopped under the body). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(Object.assign(new Error(String(signal.reason)), { code: 'ERR_INTERRUPTED' }));
  // The body keeps running until the stop cascade ends its VMs; its outcome no longer matters.
  p.catch(() => undefined);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(Object.assign(new Error(`interrupted by ${String(signal.reason)}`), { code: 'ERR_INTERRUPTED' }));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** One failed check per process that died during the run (its name, how and when), or one passed check. */
function exitChecks(exits: readonly ProcessExit[]): RunResult['checks'] {
  const died = exits.filter((e) => e.cause === 'died');
  if (died.length === 0) return [{ name: 'no process died during the run', ok: true, detail: `${exits.length} process(es) ended, none on its own` }];
  return died.map((e) => ({ name: `${e.name} died during the run`, ok: false, detail: describeProcessExit(e) }));
}

/** Checks every run ends with, from what stop() saw. */
function endChecks(report: StopReport, stats: Record<string, unknown>): RunResult['checks'] {
  const out: RunResult['checks'] = [];
  const hv = report.hvStats;
  if (!hv) {
    out.push({ name: 'backend answered HV_STATS before shutdown', ok: false, detail: report.hvStatsError ?? 'no answer' });
  } else {
    const inUse = hv.domains.filter((d) => d.grantsInUse > 0);
    out.push({
      name: 'every grant ended before shutdown',
      ok: inUse.length === 0,
      detail: inUse.length === 0 ? `${hv.domains.length} domain(s), no grant entry in use` : inUse.map((d) => `${d.name}: ${d.grantsInUse} in use`).join(', '),
    });
    out.push({ name: 'no routed request left pending', ok: hv.routedPending === 0, detail: `${hv.routedPending} pending` });
  }
  if (typeof stats.bytesCopied === 'number') {
    const moved = `${stats.bytesCopied} bytes moved by the backend (${String(stats.routedBytes)} in routed data (ECHO, SIM_FRAME_COPY), ${String(stats.grantCopyBytes)} by GNTTAB_COPY); ${String(stats.wireBytes)} protocol bytes in all`;
    // A scenario that copies on purpose (builtin/copies.ts) declares how many bytes; every other one copies none.
    const expected = typeof stats.expectedBytesCopied === 'number' ? stats.expectedBytesCopied : 0;
    out.push(expected === 0
      ? { name: 'no buffer byte copied in a message', ok: stats.bytesCopied === 0, detail: moved }
      : { name: `the backend counted the ${expected} bytes the scenario copied`, ok: stats.bytesCopied === expected, detail: moved });
  }
  const l = report.leaks;
  out.push({
    name: 'nothing leaked',
    ok: Object.values(l).every((n) => n === 0),
    detail: `busy grants ${l.busyGrants}, mappings ${l.mappings}, processes ${l.processes}, shm files ${l.shmFiles}${report.shmFiles.length ? ` (${report.shmFiles.join(', ')})` : ''}`,
  });
  return out;
}
