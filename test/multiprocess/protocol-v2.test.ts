/**
 * Protocol versions between real processes (SPEC.md 15): a v2 domain and a
 * v1 domain share a buffer in both directions, a v1-only VM works against
 * the v2 backend, and v2 VMs work against a backend started with
 * --max-version 1. Each importer maps the way its own version says: v2 in
 * one GNTTAB_MAP_DIRECTORY round trip, v1 with its own directory rounds and
 * one data map.
 */
import { describe, expect, it } from 'vitest';
import { HV_GRANT_STATS } from '../../protocol/messages/grant.ts';
import type { VmProcess } from '../../vm-sim/process/spawn/spawn-vm.ts';
import { domainStats, startRun, startVm, type Run } from './harness.ts';

const UHD = 3840 * 2160 * 4;

interface Mapper { liveMappings: number; mapRequests: number; directoryMaps: number }
interface Stats { importer: { mappedPages: number }; kernel: { mapper: Mapper; grants: { granted: number } } }

/** Exports a scattered 4K buffer from `exp` to `imp`, imports and checks every byte, releases; returns the importer's map requests. */
async function shareOnce(run: Run, exp: VmProcess, imp: VmProcess, dirFormat: 'multilevel' | 'linked'): Promise<{ mapRequests: number; directoryMaps: number }> {
  const a = await exp.call<{ buf: number; nents: number }>('dmabuf.alloc', { bytes: UHD, scattered: true });
  expect(a.nents).toBe(8100);
  await exp.call('dmabuf.fill', { buf: a.buf, seed: 11 });
  const event = imp.call<{ hid: string }>('dmabuf.readEvent', { block: true, timeoutMs: 20_000 });
  const { hid } = await exp.call<{ hid: string }>('dmabuf.export', { buf: a.buf, domid: imp.domid, dirFormat });
  expect((await event).hid).toBe(hid);
  const before = (await imp.call<Stats>('dmabuf.stats')).kernel.mapper;
  const { fd } = await imp.call<{ fd: number }>('dmabuf.exportFd', { hid });
  expect(await imp.call('dmabuf.fdCheck', { fd, seed: 11 })).toMatchObject({ ok: true, firstBad: -1, byteLength: UHD });
  const after = (await imp.call<Stats>('dmabuf.stats')).kernel.mapper;
  await imp.call('dmabuf.release', { fd });
  await exp.call('dmabuf.unexport', { hid });
  await exp.call('dmabuf.waitReleased', { hid, timeoutMs: 20_000 });
  await exp.call('dmabuf.put', { buf: a.buf });
  for (const vm of [exp, imp]) expect(await domainStats(run, vm.domid)).toMatchObject({ grantsInUse: 0, busyGrants: 0, mappings: 0 });
  return { mapRequests: after.mapRequests - before.mapRequests, directoryMaps: after.directoryMaps - before.directoryMaps };
}

/** What an importer of each version sends to map a 4K buffer: v2 one directory map; v1 its directory rounds + one data map. */
function expectedRequests(importerVersion: number, dirFormat: 'multilevel' | 'linked'): { mapRequests: number; directoryMaps: number } {
  if (importerVersion === 2) return { mapRequests: 1, directoryMaps: 1 };
  return { mapRequests: (dirFormat === 'multilevel' ? 2 : 8) + 1, directoryMaps: 0 };
}

describe('protocol versions between processes', () => {
  it('a v2 domain and a v1 domain share in both directions, each importing the way its version says', async () => {
    const run = await startRun();
    const [v2, v1] = await Promise.all([startVm(run, 'v2', 20_000), startVm(run, 'v1', 20_000, undefined, { maxVersion: 1 })]);
    for (const dirFormat of ['multilevel', 'linked'] as const) {
      expect(await shareOnce(run, v2, v1, dirFormat), `v2 -> v1 ${dirFormat}`).toEqual(expectedRequests(1, dirFormat));
      expect(await shareOnce(run, v1, v2, dirFormat), `v1 -> v2 ${dirFormat}`).toEqual(expectedRequests(2, dirFormat));
    }
    // The backend measured its own per-entry work (HV_GRANT_STATS, v2): two v2 imports of 8,100 pages each at least.
    const cost = await run.control.call(HV_GRANT_STATS, {});
    expect(cost.mapEntries).toBeGreaterThanOrEqual(4 * 8100);
    expect(cost.dirPages).toBeGreaterThanOrEqual(9 + 8);
    expect(cost.mapNs).toBeGreaterThan(0);
  }, 120_000);

  it('v2 VMs against a backend started with --max-version 1 speak v1 and still share', async () => {
    const run = await startRun({ maxVersion: 1 });
    expect(run.control.version).toBe(1);
    const [a, b] = await Promise.all([startVm(run, 'a', 20_000), startVm(run, 'b', 20_000)]);
    expect(await shareOnce(run, a, b, 'linked')).toEqual(expectedRequests(1, 'linked'));
    // v2's own requests do not exist on this connection.
    await expect(run.control.call(HV_GRANT_STATS, {})).rejects.toMatchObject({ code: 'ERR_UNKNOWN_TYPE' });
  }, 120_000);
});
