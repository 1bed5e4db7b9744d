/**
 * One run of the simulator: a backend process, the launcher as the control
 * domain (domain 0) on its own connection, and a VM process per domain.
 *
 *   const run = await Run.start({ runTag, trace: true, log });
 *   const [render] = await run.addDomains([{ name: 'render', memPages: 8192 }]);
 *   await render.call('dmabuf.alloc', { bytes: 4096 });
 *   const report = await run.stop();   // leaks measured, every process reaped, no shm file left
 *
 * A domain may instead be an outside domain (DomainLaunch.command): a process
 * of any implementation, started as SPEC.md Appendix B says and reached over
 * the protocol (outside-domain.ts); it takes part in the cascade as a VM does.
 *
 * Close cascade (stop(), idempotent, also on failure and on SIGINT):
 * HV_STATS (busy grants, mappings) -> traces flushed -> each live VM asked
 * to shut down (kernel.shutdown; SIGTERM if it cannot answer) -> HV_STATS
 * again (what is still busy or mapped once no VM runs: nothing may be) ->
 * control connection closed -> backend SIGTERM (it removes the run's files) -> the
 * processes that did not exit within the grace period are counted as leaked
 * (leaks.processes), THEN SIGKILLed -> every child reaped -> /dev/shm files
 * of the run counted, then removed.
 *
 * Every process's end is recorded (exits.ts): who, how, when and why; a
 * process that ended on its own during the run (the backend too) `died`.
 */
import type { ResponseOf } from '../../protocol/message.ts';
import { DOMAIN_CREATE, HV_STATS_V2 } from '../../protocol/messages/control.ts';
import { HvClient } from '../../src/transport/hv-client.ts';
import type { HvStatsBody } from '../../src/hv/stats.ts';
import { reapAll, type ChildExit, type ManagedChild } from '../process/spawn/child.ts';
import { spawnHv, type HvProcess } from '../process/spawn/spawn-hv.ts';
import { spawnVm } from '../process/spawn/spawn-vm.ts';
import { nowUs } from '../trace/clock.ts';
import { TRACE_ENV } from '../trace/records.ts';
import { processExit, type FatalReport, type ProcessExit } from './exits.ts';
import { forgetRunTag, hvLeaks, type HeldByDesign, rememberRunTag, runningPids, shmFilesOf, sweepShmFiles, type Leaks } from './leaks.ts';
import { RunTrace } from './run-trace.ts';
import { newRunTag } from './run-tag.ts';
import { OutsideDomain } from './outside-domain.ts';
import { VmHandle, VmState } from './vm-handle.ts';
import type { ValueOf } from '../../protocol/state-machine.ts';

/** Run lifecycle. */
export const RunState = {
  Starting: 'starting',
  Running: 'running',
  Stopping: 'stopping',
  Stopped: 'stopped',
} as const;
/** One of the RunState states. */
export type RunState = ValueOf<typeof RunState>;

/** Options of a run. */
export interface RunOptions {
  /** Prefix of the run's shm files (default: a fresh one). */
  runTag?: string;
  /** Collect a trace (children run with HDMABUF_TRACE=1). */
  trace?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Copy children's output to ours. */
  echoOutput?: boolean;
  /** Time a child has to report ready (default 60 s: a loaded machine compiles and boots slowly). */
  readyTimeoutMs?: number;
}

/** Default time a child has to report ready. */
export const DEFAULT_READY_TIMEOUT_MS = 60_000;

/** How long the close cascade waits for each process to exit by itself before it counts it as leaked and kills it. */
export const SHUTDOWN_GRACE_MS = 5000;

/** A domain to start. */
export interface DomainLaunch {
  name: string;
  memPages: number;
  maxGrantFrames?: number;
  /** Highest protocol version the VM offers in HELLO (default: the highest it speaks), e.g. 1 to measure the v1 path. */
  maxVersion?: number;
  /** An outside domain: this command (argv) runs as the domain instead of the project's VM (SPEC.md Appendix B.1, B.2). */
  command?: readonly string[];
}

/** What stop() measured. */
export interface StopReport {
  leaks: Leaks;
  /** HV_STATS just before shutdown (undefined if the backend could not answer). */
  hvStats: HvStatsBody | undefined;
  /** Why HV_STATS failed, if it did. */
  hvStatsError: string | undefined;
  /** Names of the shm files found (and removed) after reaping. */
  shmFiles: string[];
  /** State held at the HV_STATS snapshot by design (SPEC.md 11.4), not counted in leaks; undefined if not measured. */
  heldByDesign: HeldByDesign | undefined;
  /** Files the backend left because it died during the run (removed by the launcher; not counted as leaks). */
  filesOfDeadBackend: string[];
  /** Names of the processes that did not exit within the grace period and were killed. */
  forced: string[];
  /**
   * Busy grants and mappings the backend still counted once every VM had shut down (HV_STATS after the VMs'
   * exits, summed over every domain: no VM is left to hold anything by design); undefined if not measured.
   */
  afterVmsExited: { busyGrants: number; mappings: number } | undefined;
}

/** A running simulation. */
export class Run {
  readonly runTag: string;
  readonly hv: HvProcess;
  readonly control: HvClient;
  readonly trace: RunTrace | undefined;
  state: RunState = RunState.Starting;
  /** Every pid the run started (the backend first). */
  readonly pids: number[] = [];
  private readonly vmsByName = new Map<string, VmHandle>();
  private readonly outsideByName = new Map<string, OutsideDomain>();
  private readonly log: (line: string) => void;
  private readonly options: RunOptions;
  private stopping: Promise<StopReport> | undefined;
  /** When the run started (performance.now()), for the times of exits. */
  readonly startedAt: number;
  /** Every process that ended, in order. */
  readonly exits: ProcessExit[] = [];
  /** Pids the cascade had to SIGKILL. */
  private readonly forcedPids = new Set<number>();
  /** Pids the cascade asked to stop (kernel.shutdown, SIGTERM): an exit of any other pid is a death. */
  private readonly askedToStop = new Set<number>();
  /** `fatal` reports of VMs, by pid. */
  private readonly fatals = new Map<number, FatalReport>();
  /** Resolves with the backend's exit if it dies during the run (never rejects). */
  readonly backendDied: Promise<ProcessExit>;

  private constructor(options: RunOptions, runTag: string, hv: HvProcess, control: HvClient, trace: RunTrace | undefined, startedAt: number) {
    this.options = options;
    this.startedAt = startedAt;
    this.runTag = runTag;
    this.hv = hv;
    this.control = control;
    this.trace = trace;
    this.log = options.log ?? (() => undefined);
    this.pids.push(hv.pid);
    this.backendDied = new Promise((resolve) => {
      this.watch(hv.child as ManagedChild<unknown>, 'hv', 'hv', (e) => { if (e.cause === 'died') resolve(e); });
    });
  }

  /** Records the child's exit when it comes, with its cause. */
  private watch(child: { pid: number; exited: Promise<ChildExit> }, name: string, role: ProcessExit['role'], then?: (e: ProcessExit) => void): void {
    void child.exited.then((exit: ChildExit) => {
      const e = processExit(name, role, child.pid, exit, performance.now() - this.startedAt, this.causeOf(child.pid, name, exit), this.fatals.get(child.pid));
      this.exits.push(e);
      if (e.cause === 'died') this.log(`${name} (pid ${child.pid}) died: ${exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`}${e.fatal ? ` (${e.fatal.code}: ${e.fatal.message})` : ''}`);
      then?.(e);
    });
  }

  private causeOf(pid: number, name: string, exit: ChildExit): ProcessExit['cause'] {
    if (this.forcedPids.has(pid)) return 'forced';
    // Asked to stop, but it did not stop cleanly (killed from outside before its exit was seen, or it failed).
    if (this.askedToStop.has(pid) && exit.code !== 0 && exit.signal !== 'SIGTERM') return 'died';
    // Not the run's state: a process killed from outside while the cascade runs (or whose death made a step
    // fail and so started the cascade before its exit was seen) died; only one the cascade asked stopped.
    if (this.askedToStop.has(pid)) return 'shutdown';
    if ((this.vmsByName.get(name) ?? this.outsideByName.get(name))?.state === VmState.Killed) return 'killed by the scenario';
    return 'died';
  }

  /** Starts the backend and connects the control domain. On failure nothing is left running. */
  static async start(options: RunOptions = {}): Promise<Run> {
    const runTag = options.runTag ?? newRunTag();
    const startedAt = performance.now();
    // Whatever ends this process from here on (a second Ctrl-C, process.exit), the run's files go.
    rememberRunTag(runTag);
    // Installed before any connection: the trace must see every frame from HELLO on.
    const trace = options.trace ? new RunTrace() : undefined;
    let hv: HvProcess | undefined;
    try {
      hv = await spawnHv({
        args: ['--run-tag', runTag],
        ...(trace ? { env: { [TRACE_ENV]: '1' } } : {}),
        readyTimeoutMs: options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
        ...(options.echoOutput !== undefined ? { echoOutput: options.echoOutput } : {}),
      });
      trace?.span('start hv', 'start', trace.startUs);
      trace?.addProcess(hv.pid, 'hv', 1, undefined);
      trace?.attachChild(hv.child as ManagedChild<unknown>);
      const control = await HvClient.connect({ url: hv.url, domid: 0, token: hv.controlToken, name: 'launcher' });
      const run = new Run(options, runTag, hv, control, trace, startedAt);
      run.state = RunState.Running;
      return run;
    } catch (e) {
      trace?.stop();
      await hv?.child.reap();
      sweepShmFiles(runTag);
      forgetRunTag(runTag);
      throw e;
    }
  }

  /** The VM of a domain, by name. */
  vm(name: string): VmHandle {
    const v = this.vmsByName.get(name);
    if (!v && this.outsideByName.has(name)) {
      throw Object.assign(new Error(`${name} is an outside domain (its own command, SPEC.md Appendix B), not a VM of this project: it runs no VM command`), { code: 'ERR_BAD_ARGUMENT' });
    }
    if (!v) throw Object.assign(new Error(`no domain named ${name}`), { code: 'ERR_BAD_ARGUMENT' });
    return v;
  }

  /** The outside domain of that name, if the domain is one. */
  outside(name: string): OutsideDomain | undefined {
    return this.outsideByName.get(name);
  }

  /** The domain id of a VM or an outside domain, by name. */
  domid(name: string): number {
    return (this.outsideByName.get(name) ?? this.vm(name)).domid;
  }

  /** Every VM, in start order. */
  get vms(): VmHandle[] {
    return [...this.vmsByName.values()];
  }

  /** Every outside domain, in start order. */
  get outsideDomains(): OutsideDomain[] {
    return [...this.outsideByName.values()];
  }

  /**
   * Creates the domains and starts their processes, all at once; resolves when every one reported ready, with
   * the VMs in the order given (an outside domain is reached through outside(name)).
   */
  async addDomains(domains: readonly DomainLaunch[]): Promise<VmHandle[]> {
    for (const d of domains) if (this.vmsByName.has(d.name) || this.outsideByName.has(d.name)) throw Object.assign(new Error(`domain ${d.name} exists`), { code: 'ERR_BAD_ARGUMENT' });
    const created: Array<ResponseOf<typeof DOMAIN_CREATE>> = [];
    // Sequential creation: domain ids follow the scenario's order.
    for (const d of domains) {
      created.push(await this.control.call(DOMAIN_CREATE, { name: d.name, memPages: d.memPages, ...(d.maxGrantFrames !== undefined ? { maxGrantFrames: d.maxGrantFrames } : {}) }));
    }
    const started = await Promise.allSettled(domains.map(async (d, i): Promise<VmHandle | OutsideDomain> => {
      const c = created[i]!;
      const t0 = nowUs();
      if (d.command) return this.startOutside(d, c, t0);
      const vm = await spawnVm({
        url: this.hv.url, ...c, memPages: d.memPages, name: d.name,
        ...(d.maxVersion !== undefined ? { maxVersion: d.maxVersion } : {}),
        ...(this.trace ? { env: { [TRACE_ENV]: '1' } } : {}),
        readyTimeoutMs: this.options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
        ...(this.options.echoOutput !== undefined ? { echoOutput: this.options.echoOutput } : {}),
      });
      this.pids.push(vm.pid);
      const handle = new VmHandle(d.name, d.memPages, vm);
      this.vmsByName.set(d.name, handle);
      this.trace?.span(`start VM ${d.name}`, 'start', t0);
      handle.listen((ev) => {
        if (ev.name === 'fatal') this.fatals.set(vm.pid, ev.data as FatalReport);
      });
      this.watch(vm.child as ManagedChild<unknown>, d.name, 'vm');
      this.trace?.addProcess(vm.pid, `${d.name} (dom${vm.domid})`, 2 + vm.domid, vm.domid);
      this.trace?.attachChild(vm.child as ManagedChild<unknown>);
      return handle;
    }));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    return started.map((s) => (s as PromiseFulfilledResult<VmHandle | OutsideDomain>).value).filter((h): h is VmHandle => h instanceof VmHandle);
  }

  /** Starts an outside domain's command (SPEC.md Appendix B.1) and waits for its ready line (B.2). */
  private async startOutside(d: DomainLaunch, c: ResponseOf<typeof DOMAIN_CREATE>, t0: number): Promise<OutsideDomain> {
    const launch = { url: this.hv.url, domid: c.domid, token: c.token, ramPath: c.ramPath, grantTablePath: c.grantTablePath, memPages: d.memPages, maxGrantFrames: c.maxGrantFrames };
    const outside = await OutsideDomain.start(d.name, d.command!, launch, this.options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
    this.pids.push(outside.pid);
    this.outsideByName.set(d.name, outside);
    this.trace?.span(`start outside domain ${d.name}`, 'start', t0);
    this.trace?.addProcess(outside.pid, `${d.name} (dom${outside.domid}, outside)`, 2 + outside.domid, outside.domid);
    this.watch(outside, d.name, 'outside');
    return outside;
  }

  /** A HV_STATS snapshot. */
  hvStats(timeoutMs = 10_000): Promise<HvStatsBody> {
    return this.control.call(HV_STATS_V2, {}, timeoutMs);
  }

  /** Shuts everything down and measures leaks (see the close cascade above). Idempotent. */
  stop(): Promise<StopReport> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<StopReport> {
    this.state = RunState.Stopping;
    let hvStats: HvStatsBody | undefined;
    let hvStatsError: string | undefined;
    if (this.hv.child.exit) {
      hvStatsError = `the backend had exited (${this.hv.child.exit.signal ? `signal ${this.hv.child.exit.signal}` : `code ${String(this.hv.child.exit.code)}`})`;
    } else {
      try {
        hvStats = await this.hvStats(15_000);
      } catch (e) {
        hvStatsError = (e as Error).message;
      }
    }
    if (this.trace) {
      await this.trace.flushChildren([this.hv.child as ManagedChild<unknown>, ...this.vms.map((v) => v.process.child as ManagedChild<unknown>)]);
      this.trace.stop();
    }
    // Graceful first: every VM and outside domain asked to shut down, then the backend. Nothing is killed yet.
    await Promise.all([
      ...this.vms.filter((v) => v.alive).map((v) => {
        this.askedToStop.add(v.pid);
        return v.process.shutdownGracefully(SHUTDOWN_GRACE_MS);
      }),
      ...this.outsideDomains.filter((o) => o.alive).map((o) => {
        this.askedToStop.add(o.pid);
        return o.shutdownGracefully(SHUTDOWN_GRACE_MS);
      }),
    ]);
    let afterVmsExited: StopReport['afterVmsExited'];
    if (!this.hv.child.exit && this.vms.every((v) => !v.alive) && this.outsideDomains.every((o) => !o.alive)) {
      try {
        const after = await this.hvStats(15_000);
        afterVmsExited = { busyGrants: sum(after.domains.map((d) => d.busyGrants)), mappings: sum(after.domains.map((d) => d.mappings)) };
      } catch {
        // The backend went away during the cascade: not measured (undefined says so).
      }
    }
    await this.control.close().catch(() => undefined);
    this.askedToStop.add(this.hv.pid);
    this.hv.child.kill('SIGTERM');
    await this.hv.child.exitWithin(SHUTDOWN_GRACE_MS);
    // A process still running now had to be killed: that is a leak, counted before the kill.
    const lingering: Array<{ name: string; child: { pid: number; exit: ChildExit | undefined; exited: Promise<ChildExit>; kill(signal: NodeJS.Signals): boolean } }> = [
      { name: 'hv', child: this.hv.child as ManagedChild<unknown> },
      ...this.vms.map((v) => ({ name: v.name, child: v.process.child as ManagedChild<unknown> })),
      ...this.outsideDomains.map((o) => ({ name: o.name, child: { pid: o.pid, exit: o.exit, exited: o.exited, kill: (sig: NodeJS.Signals) => o.signal(sig) } })),
    ].filter((p) => p.child.exit === undefined);
    for (const p of lingering) {
      this.forcedPids.add(p.child.pid);
      this.log(`warning: ${p.name} (pid ${p.child.pid}) did not exit within ${SHUTDOWN_GRACE_MS} ms: killing it (a leaked process)`);
      p.child.kill('SIGKILL');
    }
    await Promise.all(lingering.map((p) => p.child.exited));
    // Anything else this process started (a VM that failed to start is reaped by spawnVm already).
    await reapAll(3000);
    const stillRunning = runningPids(this.pids);
    if (stillRunning.length > 0) this.log(`warning: ${stillRunning.length} process(es) of the run still running after reaping`);
    const processes = lingering.length + stillRunning.filter((pid) => !this.forcedPids.has(pid)).length;
    const found = shmFilesOf(this.runTag);
    // A backend that died during the run could not remove its files: the launcher does, and says so; they are
    // a consequence of the death (named in exits), not a leak. Files a backend that shut down left are leaks.
    const backendDied = this.exits.some((e) => e.role === 'hv' && e.cause === 'died');
    const shmFiles = backendDied ? [] : found;
    sweepShmFiles(this.runTag);
    forgetRunTag(this.runTag);
    this.state = RunState.Stopped;
    const { heldByDesign, ...hvCounts } = hvStats ? hvLeaks(hvStats) : { busyGrants: -1, mappings: -1, heldByDesign: undefined };
    return {
      leaks: { ...hvCounts, processes, shmFiles: shmFiles.length }, heldByDesign, hvStats, hvStatsError, shmFiles,
      filesOfDeadBackend: backendDied ? found : [], forced: lingering.map((p) => p.name), afterVmsExited,
    };
  }
}

function sum(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
