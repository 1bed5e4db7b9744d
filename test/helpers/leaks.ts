/**
 * The one leak check of the tests, at each level a test runs on: a whole
 * `hdmabuf run` (expectRunClean: no busy grant, mapping, process or
 * shared-memory file of the run left), a VM process of the multi-process
 * harness (expectVmClean: nothing of the driver, the kernel, and on request
 * the fence and sync layers left, nothing busy or mapped at the backend),
 * and the driver state counts both share (liveStates).
 *
 * What the backend counts busy or mapped is split as the launcher's result
 * splits it (vm-sim/launcher/leaks.ts hvLeaks): the pages of a dead exporter
 * that a surviving importer still maps are held by design (SPEC.md 11.4),
 * everything else is a leak (backendHeld); and once every VM has shut down,
 * nothing may be held at all, by design or not (afterVmsExited), which is
 * what shows that the held-by-design state was released.
 */
import { expect } from 'vitest';
import { HV_STATS_V2 } from '../../protocol/messages/control.ts';
import type { HvClient } from '../../src/transport/hv-client.ts';
import { hvLeaks, type HeldByDesign } from '../../vm-sim/launcher/leaks.ts';
import type { RunResult } from '../../vm-sim/launcher/result.ts';
import type { VmProcess } from '../../vm-sim/process/spawn/spawn-vm.ts';
import { failing, pidsOf, runJson, shmFiles, stillRunning } from '../launcher/cli.ts';
import type { Run } from '../multiprocess/harness.ts';

/** What a clean run reports as leaked. */
export const NO_LEAKS = { busyGrants: 0, mappings: 0, processes: 0, shmFiles: 0 };

/** The states of a driver's byState counts that still hold something (every state but freed and released). */
export function liveStates(byState: Record<string, number>): Array<[string, number]> {
  return Object.entries(byState).filter(([k, v]) => k !== 'freed' && k !== 'released' && v > 0);
}

/**
 * Runs `hdmabuf run <scenario> --json` and asserts it passed and left
 * nothing: every check ok, exit code 0, no leak the launcher counted, no
 * process of the run still alive, no shared-memory file of the run.
 */
export async function expectRunClean(scenario: string, extra: string[] = []): Promise<RunResult> {
  const { code, result } = await runJson(scenario, extra);
  expect(failing(result), scenario).toEqual([]);
  expect(result).toMatchObject({ scenario, ok: true });
  expect(code).toBe(0);
  expect(result.leaks).toEqual(NO_LEAKS);
  expect(stillRunning(pidsOf(result))).toEqual([]);
  expect(shmFiles(String(result.stats.runTag))).toEqual([]);
  return result;
}

/** What the backend counts busy or mapped over every domain, split into leaks and what is held by design. */
export interface BackendHeld {
  /** Busy grants and mappings no surviving importer explains: leaks. */
  leaks: { busyGrants: number; mappings: number };
  /** What surviving importers still hold of dead exporters' pages (SPEC.md 11.4). */
  heldByDesign: HeldByDesign;
}

/** Nothing held, either way. */
export const NOTHING_HELD: BackendHeld = { leaks: { busyGrants: 0, mappings: 0 }, heldByDesign: { busyGrants: 0, mappings: 0 } };

/** A HV_STATS snapshot (v2) split as the launcher's result splits it (vm-sim/launcher/leaks.ts hvLeaks). */
export async function backendHeld(control: HvClient): Promise<BackendHeld> {
  const { busyGrants, mappings, heldByDesign } = hvLeaks(await control.call(HV_STATS_V2, {}));
  return { leaks: { busyGrants, mappings }, heldByDesign };
}

/**
 * Once every VM of the run has shut down (call it between the VMs' exits and
 * the backend's SIGTERM, as the launcher's close cascade does): the backend
 * counts no busy grant and no mapping of any domain, since no VM is left to
 * hold anything, by design or not.
 */
export async function expectNothingAfterVmsExited(control: HvClient): Promise<void> {
  const stats = await control.call(HV_STATS_V2, {});
  const held = stats.domains.filter((d) => d.busyGrants > 0 || d.mappings > 0).map(({ domid, name, state, busyGrants, mappings }) => ({ domid, name, state, busyGrants, mappings }));
  expect(held, 'busy grants or mappings the backend still counts once every VM has shut down').toEqual([]);
}

/** What else expectVmClean checks. */
export interface VmCleanOptions {
  /** The kernel has exactly this many free pages (default: it uses none). */
  freePages?: number;
  /** No event channel port open. */
  ports?: boolean;
  /** The fence layer (fence.stats) and the sync layer (dmabuf.sync.stats) hold nothing either. */
  fences?: boolean;
  /** The backend counts no grant of the domain in use (default true). */
  grantsInUse?: boolean;
  /** Check the kernel's grants, mappings and pages through dmabuf.stats (default true; the fence check counts its own). */
  kernel?: boolean;
}

interface DriverStats {
  exporter: { byState: Record<string, number> };
  importer: { byState: Record<string, number> };
  heap?: { retiring: number };
  fds: number;
  bufs: number;
  kernel: { freePages: number; usedPages: number; grants: { granted: number; deferred: number }; mapper: { liveMappings: number }; ports: number };
}

/** Nothing of the driver (and what `opts` asks) left in VM `vm`, nothing busy or mapped at the backend. */
export async function expectVmClean(run: Run, vm: VmProcess, opts: VmCleanOptions = {}): Promise<void> {
  const s = await vm.call<DriverStats>('dmabuf.stats');
  expect({ exports: liveStates(s.exporter.byState), imports: liveStates(s.importer.byState), fds: s.fds, bufs: s.bufs, retiring: s.heap?.retiring ?? 0 }, vm.name)
    .toEqual({ exports: [], imports: [], fds: 0, bufs: 0, retiring: 0 });
  const k = s.kernel;
  if (opts.kernel !== false) {
    const pages = opts.freePages === undefined ? { used: k.usedPages } : { free: k.freePages };
    expect({ granted: k.grants.granted, deferred: k.grants.deferred, mappings: k.mapper.liveMappings, ...pages, ...(opts.ports ? { ports: k.ports } : {}) }, vm.name)
      .toEqual({ granted: 0, deferred: 0, mappings: 0, ...(opts.freePages === undefined ? { used: 0 } : { free: opts.freePages }), ...(opts.ports ? { ports: 0 } : {}) });
  }
  if (opts.fences) {
    const f = await vm.call<{ owner: { slotHolds: number }; observer: { pendingPoints: number }; kernel: { mappings: number; granted: number } }>('fence.stats');
    expect({ slotHolds: f.owner.slotHolds, pendingImported: f.observer.pendingPoints, mappings: f.kernel.mappings, granted: f.kernel.granted }, vm.name)
      .toEqual({ slotHolds: 0, pendingImported: 0, mappings: 0, granted: 0 });
    const y = await vm.call<{ resv: { pending: number }; prepared: number; streams: number }>('dmabuf.sync.stats');
    expect({ pending: y.resv.pending, prepared: y.prepared, streams: y.streams }, vm.name).toEqual({ pending: 0, prepared: 0, streams: 0 });
  }
  // The domain's own grants and mappings, less its mappings of dead exporters' pages (held by design, SPEC.md 11.4);
  // the whole snapshot's leaks too (a dead domain's busy grants no survivor explains).
  const d = (await run.control.call(HV_STATS_V2, {})).domains.find((x) => x.domid === vm.domid);
  const own = d && { busyGrants: d.busyGrants, mappings: d.mappings - (d.mappingsOfDead ?? 0), ...(opts.grantsInUse === false ? {} : { grantsInUse: d.grantsInUse }) };
  expect(own, vm.name).toEqual({ busyGrants: 0, mappings: 0, ...(opts.grantsInUse === false ? {} : { grantsInUse: 0 }) });
  expect((await backendHeld(run.control)).leaks, `${vm.name}: backend leaks`).toEqual({ busyGrants: 0, mappings: 0 });
}
