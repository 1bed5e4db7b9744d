/**
 * Harness of the multi-process fence tests: one backend process and a few
 * VM processes shared by the tests of one file (startup costs seconds per
 * process, so checks are grouped per setup), and the test process as the
 * control domain.
 *
 * stopFenceRun checks, before shutting the VMs down, that the fence layer
 * of each holds nothing (timelines, shares, grants, slots, imports,
 * mappings, ports, pages) and that the backend sees no busy grant, mapping
 * or port (what survivors map of dead domains' pages is held by design,
 * SPEC.md 11.4, and returned, not a leak); then it shuts every VM down
 * through its close cascade, checks that the backend then counts nothing
 * busy or mapped (no VM is left to hold anything, by design or not), and
 * stops the backend with SIGTERM (test/helpers/graceful-stop.ts): a process that had
 * to be killed after the grace period is a leak, named before the kill; then
 * no process and no shm file of the run may be left.
 */
import { readdirSync } from 'node:fs';
import { expect } from 'vitest';
import { DOMAIN_CREATE, HV_STATS_V2 } from '../../protocol/messages/control.ts';
import type { ResponseOf } from '../../protocol/message.ts';
import { HvClient } from '../../src/transport/hv-client.ts';
import { isRunning, reapAll } from '../../vm-sim/process/spawn/child.ts';
import { spawnHv, type HvProcess } from '../../vm-sim/process/spawn/spawn-hv.ts';
import { spawnVm, type VmProcess } from '../../vm-sim/process/spawn/spawn-vm.ts';
import type { FenceHostStats } from '../../src/fence-remote/fence-host.ts';
import { stopGracefully } from '../helpers/graceful-stop.ts';
import { backendHeld, expectNothingAfterVmsExited } from '../helpers/leaks.ts';
import type { HeldByDesign } from '../../vm-sim/launcher/leaks.ts';

/** A backend, its control connection and the VMs of one test file. */
export interface FenceRun {
  hv: HvProcess;
  control: HvClient;
  vms: VmProcess[];
  pids: number[];
}

/** What `fence.stats` answers. */
export type FenceStats = FenceHostStats & {
  kernel: { mappings: number; ports: number; granted: number; deferred: number; usedPages: number };
  objects: { fences: number; callbacks: number; streams: number; stress: number };
};

/** Starts a backend and one VM per name (in parallel), loading the kernel, fence and wait modules. */
export async function startFenceRun(names: string[], memPages = 4096): Promise<FenceRun> {
  const hv = await spawnHv();
  const control = await HvClient.connect({ url: hv.url, domid: 0, token: hv.controlToken, name: 'control' });
  const run: FenceRun = { hv, control, vms: [], pids: [hv.pid] };
  try {
    run.vms = await Promise.all(names.map(async (name) => {
      const created = await control.call(DOMAIN_CREATE, { name, memPages });
      const vm = await spawnVm({ url: hv.url, ...created, memPages, name, modules: ['kernel', 'fence', 'wait'] });
      run.pids.push(vm.pid);
      return vm;
    }));
  } catch (e) {
    await control.close();
    await reapAll();
    throw e;
  }
  return run;
}

/** One domain's line of HV_STATS, or undefined once it is gone. */
export async function domainStats(run: FenceRun, domid: number): Promise<ResponseOf<typeof HV_STATS_V2>['domains'][number] | undefined> {
  return (await run.control.call(HV_STATS_V2, {})).domains.find((d) => d.domid === domid);
}

/** The fence layer's resources in a VM, as compared by expectNothingHeld. */
export async function heldBy(vm: VmProcess): Promise<Record<string, number>> {
  const s = await vm.call<FenceStats>('fence.stats');
  return {
    timelines: s.owner.timelines + s.owner.timelinesClosing,
    shares: s.owner.shares.offered + s.owner.shares.mapped + s.owner.shares.closing,
    grantsLive: s.owner.grantsLive,
    slotsUsed: s.owner.slotsUsed,
    imports: s.observer.timelines,
    importedPending: s.observer.pendingPoints,
    mappings: s.kernel.mappings,
    ports: s.kernel.ports,
    granted: s.kernel.granted + s.kernel.deferred,
    usedPages: s.kernel.usedPages,
  };
}

const NOTHING = { timelines: 0, shares: 0, grantsLive: 0, slotsUsed: 0, imports: 0, importedPending: 0, mappings: 0, ports: 0, granted: 0, usedPages: 0 };

/**
 * Every live VM holds nothing, and the backend agrees: no grant in use, busy grant, mapping or port of a live
 * domain, less what it maps of dead domains' pages, and no leak in the whole snapshot (a dead domain's busy grants
 * no survivor explains). What survivors hold of dead domains by design (SPEC.md 11.4) is returned, not failed on:
 * stopFenceRun checks that it is gone once every VM has shut down.
 */
export async function expectNothingHeld(run: FenceRun): Promise<HeldByDesign> {
  for (const vm of run.vms) {
    if (vm.child.exit) continue;
    expect(await heldBy(vm), vm.name).toEqual(NOTHING);
    const d = await domainStats(run, vm.domid);
    expect(d && { grantsInUse: d.grantsInUse, busyGrants: d.busyGrants, mappings: d.mappings - d.mappingsOfDead, ports: d.ports }, vm.name)
      .toEqual({ grantsInUse: 0, busyGrants: 0, mappings: 0, ports: 0 });
  }
  const { leaks, heldByDesign } = await backendHeld(run.control);
  expect(leaks, 'backend leaks').toEqual({ busyGrants: 0, mappings: 0 });
  return heldByDesign;
}

/**
 * Checks that nothing is held, shuts every VM down through its close
 * cascade (exit code 0 expected of those still alive) and the backend with
 * SIGTERM, and checks that none had to be killed and that no process and
 * no shm file of the run is left.
 */
export async function stopFenceRun(run: FenceRun | undefined, checkHeld = true): Promise<void> {
  if (!run) return;
  let leaked: string[] = [];
  const alive = run.vms.filter((vm) => !vm.child.exit);
  try {
    if (checkHeld) await expectNothingHeld(run);
  } finally {
    leaked = await stopGracefully({ vms: run.vms, hv: run.hv, controls: [run.control], afterVmsExited: () => expectNothingAfterVmsExited(run.control) });
  }
  expect(leaked, 'processes that did not stop gracefully (killed)').toEqual([]);
  for (const vm of alive) expect(vm.child.exit, vm.name).toEqual({ code: 0, signal: null });
  expect(run.pids.filter(isRunning)).toEqual([]);
  expect(readdirSync('/dev/shm').filter((n) => n.startsWith(run.hv.runTag))).toEqual([]);
}

