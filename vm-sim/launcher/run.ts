/**
 * One run of the simulator: a backend process, the launcher as the control
 * domain (domain 0) on its own connection, and a VM process per domain.
 *
 *   const run = await Run.start({ runTag, trace: true, log });
 *   const [render] = await run.addDomains([{ name: 'render', memPages: 8192 }]);
 *   await render.call('dmabuf.alloc', { bytes: 4096 });
 *   const report = await run.stop();   // leaks measured, every process reaped, no shm file left
 *
 * Close cascade (stop(), idempotent, also on failure and on SIGINT):
 * HV_STATS (busy grants, mappings) -> traces flushed -> each live VM shut
 * down (kernel.shutdown, SIGTERM, SIGKILL) -> control connection closed ->
 * backend SIGTERM (it removes the run's files), SIGKILL if it hangs ->
 * every child reaped -> pids still running counted -> /dev/shm files of the
 * run counted, then removed.
 */
import type { ResponseOf } from '../../protocol/message.ts';
import { DOMAIN_CREATE, HV_STATS } from '../../protocol/messages/control.ts';
import { HvClient } from '../../src/client/hv-client.ts';
import type { HvStatsBody } from '../../src/hv/stats.ts';
import { reapAll, type ManagedChild } from '../process/child.ts';
import { spawnHv, type HvProcess } from '../process/spawn-hv.ts';
import { spawnVm } from '../process/spawn-vm.ts';
import { nowUs } from '../trace/clock.ts';
import { TRACE_ENV } from '../trace/records.ts';
import { hvLeaks, runningPids, shmFilesOf, sweepShmFiles, type Leaks } from './leaks.ts';
import { RunTrace } from './run-trace.ts';
import { newRunTag } from './run-tag.ts';
import { VmHandle } from './vm-handle.ts';

/** Run lifecycle. */
export enum RunState {
  Starting = 'starting',
  Running = 'running',
  Stopping = 'stopping',
  Stopped = 'stopped',
}

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

/** A domain to start. */
export interface DomainLaunch {
  name: string;
  memPages: number;
  maxGrantFrames?: number;
  /** Highest protocol version the VM offers in HELLO (default: the highest it speaks), e.g. 1 to measure the v1 path. */
  maxVersion?: number;
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
}

/** A running simulation. */
export class Run {
  readonly runTag: string;
  readonly hv: HvProcess;
  readonly control: HvClient;
  readonly trace: RunTrace | undefined;
  state = RunState.Starting;
  /** Every pid the run started (the backend first). */
  readonly pids: number[] = [];
  private readonly vmsByName = new Map<string, VmHandle>();
  private readonly log: (line: string) => void;
  private readonly options: RunOptions;
  private stopping: Promise<StopReport> | undefined;

  private constructor(options: RunOptions, runTag: string, hv: HvProcess, control: HvClient, trace: RunTrace | undefined) {
    this.options = options;
    this.runTag = runTag;
    this.hv = hv;
    this.control = control;
    this.trace = trace;
    this.log = options.log ?? (() => undefined);
    this.pids.push(hv.pid);
  }

  /** Starts the backend and connects the control domain. On failure nothing is left running. */
  static async start(options: RunOptions = {}): Promise<Run> {
    const runTag = options.runTag ?? newRunTag();
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
      const run = new Run(options, runTag, hv, control, trace);
      run.state = RunState.Running;
      return run;
    } catch (e) {
      trace?.stop();
      await hv?.child.reap();
      sweepShmFiles(runTag);
      throw e;
    }
  }

  /** The VM of a domain, by name. */
  vm(name: string): VmHandle {
    const v = this.vmsByName.get(name);
    if (!v) throw Object.assign(new Error(`no domain named ${name}`), { code: 'ERR_BAD_ARGUMENT' });
    return v;
  }

  /** Every VM, in start order. */
  get vms(): VmHandle[] {
    return [...this.vmsByName.values()];
  }

  /** Creates the domains and starts their VMs, all at once; resolves when every VM reported ready. */
  async addDomains(domains: readonly DomainLaunch[]): Promise<VmHandle[]> {
    for (const d of domains) if (this.vmsByName.has(d.name)) throw Object.assign(new Error(`domain ${d.name} exists`), { code: 'ERR_BAD_ARGUMENT' });
    const created: Array<ResponseOf<typeof DOMAIN_CREATE>> = [];
    // Sequential creation: domain ids follow the scenario's order.
    for (const d of domains) {
      created.push(await this.control.call(DOMAIN_CREATE, { name: d.name, memPages: d.memPages, ...(d.maxGrantFrames !== undefined ? { maxGrantFrames: d.maxGrantFrames } : {}) }));
    }
    const started = await Promise.allSettled(domains.map(async (d, i) => {
      const c = created[i]!;
      const t0 = nowUs();
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
      this.trace?.addProcess(vm.pid, `${d.name} (dom${vm.domid})`, 2 + vm.domid, vm.domid);
      this.trace?.attachChild(vm.child as ManagedChild<unknown>);
      return handle;
    }));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    return started.map((s) => (s as PromiseFulfilledResult<VmHandle>).value);
  }

  /** A HV_STATS snapshot. */
  hvStats(timeoutMs = 10_000): Promise<HvStatsBody> {
    return this.control.call(HV_STATS, {}, timeoutMs);
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
    try {
      hvStats = await this.hvStats(15_000);
    } catch (e) {
      hvStatsError = (e as Error).message;
    }
    if (this.trace) {
      await this.trace.flushChildren([this.hv.child as ManagedChild<unknown>, ...this.vms.map((v) => v.process.child as ManagedChild<unknown>)]);
      this.trace.stop();
    }
    await Promise.all(this.vms.filter((v) => v.alive).map((v) => v.process.shutdown(3000)));
    await this.control.close().catch(() => undefined);
    await this.hv.child.reap(5000);
    // Anything else this process started (a VM that failed to start is reaped by spawnVm already).
    await reapAll(3000);
    const processes = runningPids(this.pids).length;
    const shmFiles = shmFilesOf(this.runTag);
    sweepShmFiles(this.runTag);
    this.state = RunState.Stopped;
    const hvCounts = hvStats ? hvLeaks(hvStats) : { busyGrants: -1, mappings: -1 };
    if (processes > 0) this.log(`warning: ${processes} process(es) of the run still running after reaping`);
    return { leaks: { ...hvCounts, processes, shmFiles: shmFiles.length }, hvStats, hvStatsError, shmFiles };
  }
}
