/**
 * Harness of the multi-process tests: a real backend process, VM processes,
 * and the test process itself as the control domain (domain 0, connected
 * with the backend's control token).
 *
 * afterEach stops the run like the launcher's close cascade (test/helpers/
 * graceful-stop.ts): every VM is asked to shut down, the backend must then
 * count no busy grant and no mapping (nothing is held by design once no VM
 * is left), the control connection is closed and the backend SIGTERMed, and a process
 * still running after the grace period is a leak (named before the SIGKILL
 * that follows); then no pid and no shared-memory file of the run may be
 * left.
 */
import { readdirSync } from 'node:fs';
import { afterEach, expect } from 'vitest';
import type { ResponseOf } from '../../protocol/index.ts';
import { DOMAIN_CREATE, HV_STATS_V2 } from '../../protocol/messages/control.ts';
import { HvClient } from '../../src/transport/hv-client.ts';
import { isRunning } from '../../vm-sim/process/spawn/child.ts';
import { spawnHv, type HvProcess } from '../../vm-sim/process/spawn/spawn-hv.ts';
import { spawnVm, type VmProcess } from '../../vm-sim/process/spawn/spawn-vm.ts';
import { stopGracefully } from '../helpers/graceful-stop.ts';
import { expectNothingAfterVmsExited } from '../helpers/leaks.ts';

const runs: Run[] = [];
const vms: VmProcess[] = [];
const pids: number[] = [];

afterEach(async () => {
  const started = runs.splice(0);
  const leaked: string[] = [];
  // Once every VM has shut down, the backend may count nothing busy or mapped: nothing is held by design any more.
  for (const r of started) leaked.push(...await stopGracefully({ vms: vms.splice(0), hv: r.hv, controls: [r.control], afterVmsExited: () => expectNothingAfterVmsExited(r.control) }));
  leaked.push(...await stopGracefully({ vms: vms.splice(0) }));
  expect(leaked, 'processes that did not stop gracefully (killed)').toEqual([]);
  expect(pids.splice(0).filter(isRunning)).toEqual([]);
  const tags = started.map((r) => r.hv.runTag);
  expect(readdirSync('/dev/shm').filter((n) => tags.some((t) => n.startsWith(t)))).toEqual([]);
});

/** A backend process and the control domain connected to it. */
export interface Run {
  hv: HvProcess;
  control: HvClient;
}

/** Options of a run's backend. */
export interface RunOptions {
  /** Highest protocol version the backend speaks (hv-main --max-version; default: this implementation's). */
  maxVersion?: number;
}

/** Starts a backend process and connects the control domain. */
export async function startRun(opts: RunOptions = {}): Promise<Run> {
  const hv = await spawnHv(opts.maxVersion !== undefined ? { args: ['--max-version', String(opts.maxVersion)] } : {});
  pids.push(hv.pid);
  const control = await HvClient.connect({ url: hv.url, domid: 0, token: hv.controlToken, name: 'control' });
  const run = { hv, control };
  runs.push(run);
  return run;
}

/** Creates a domain (DOMAIN_CREATE) and starts its VM process (offering at most `opts.maxVersion` if given). */
export async function startVm(run: Run, name: string, memPages = 4096, maxGrantFrames?: number, opts: { maxVersion?: number } = {}): Promise<VmProcess> {
  const created = await run.control.call(DOMAIN_CREATE, { name, memPages, ...(maxGrantFrames ? { maxGrantFrames } : {}) });
  const vm = await spawnVm({ url: run.hv.url, ...created, memPages, name, ...(opts.maxVersion !== undefined ? { maxVersion: opts.maxVersion } : {}) });
  pids.push(vm.pid);
  vms.push(vm);
  return vm;
}

/** One domain's line of HV_STATS (v2: with mappingsOfDead, what it maps of dead domains' pages, held by design, SPEC 11.4). */
export type DomainStats = ResponseOf<typeof HV_STATS_V2>['domains'][number];

/** HV_STATS for one domain (undefined once it is fully removed). */
export async function domainStats(run: Run, domid: number): Promise<DomainStats | undefined> {
  const stats = await run.control.call(HV_STATS_V2, {});
  return stats.domains.find((d) => d.domid === domid);
}

/** Resolves with the data of the first event `name` from the VM that satisfies `match`. */
export function nextEvent<T = Record<string, unknown>>(vm: VmProcess, name: string, match: (data: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const off = vm.onEvent((e) => {
      if (e.name !== name || !match(e.data as T)) return;
      off();
      resolve(e.data as T);
    });
  });
}
