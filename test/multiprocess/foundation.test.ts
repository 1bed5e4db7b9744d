/**
 * Issue 2's multi-process proofs, with real processes: a backend process,
 * VM processes that each boot a guest kernel over their own shared-memory
 * RAM, and the test as the control domain. Data moves only through shared
 * pages; the processes exchange refs, statuses and checksums.
 */
import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '../../protocol/limits.ts';
import type { GuestKernelStats } from '../../src/guest/kernel.ts';
import { domainStats, nextEvent, startRun, startVm } from './harness.ts';

const PAGES = 1100;

interface Alloc { buf: number; frames: Uint32Array; runs: number }
interface Mapped { map: number; pages: number; mapRequests: number; byteLength: number }

describe('foundation: shared memory between processes through grants', () => {
  it('(a) the importer maps 1,100 grants in one round trip, reads the pattern, and writes a reply the exporter reads', async () => {
    const run = await startRun();
    const [exporter, importer] = await Promise.all([startVm(run, 'exporter'), startVm(run, 'importer')]);

    // Read-only share: exporter fills and grants.
    const ro = await exporter.call<Alloc>('mem.alloc', { pages: PAGES });
    expect(ro.runs).toBeLessThanOrEqual(10); // heap orders: a few contiguous runs
    await exporter.call('mem.fill', { buf: ro.buf, seed: 11 });
    const { refs: roRefs } = await exporter.call<{ refs: Uint32Array }>('grant.many', { buf: ro.buf, domid: importer.domid, readonly: true });
    expect(roRefs.length).toBe(PAGES);

    const before = await importer.call<GuestKernelStats>('kernel.stats');
    const roMap = await importer.call<Mapped>('map.grants', { dom: exporter.domid, refs: roRefs, readonly: true });
    const after = await importer.call<GuestKernelStats>('kernel.stats');
    expect(roMap).toMatchObject({ pages: PAGES, mapRequests: 1, byteLength: PAGES * PAGE_SIZE });
    expect(after.mapper.mapRequests - before.mapper.mapRequests).toBe(1);
    expect(await importer.call('map.check', { map: roMap.map, seed: 11 })).toEqual({ ok: true, badPage: -1 });

    // Read-write share, scattered pages (worst case): the importer writes, the exporter reads its own RAM.
    const rw = await exporter.call<Alloc>('mem.alloc', { pages: PAGES, scattered: true });
    expect(rw.runs).toBe(PAGES);
    const { refs: rwRefs } = await exporter.call<{ refs: Uint32Array }>('grant.many', { buf: rw.buf, domid: importer.domid, readonly: false });
    // 2,200 refs outgrew the initial 4 frames (2,047 refs): one GNTTAB_SETUP_TABLE, and the backend maps the new refs.
    expect((await exporter.call<GuestKernelStats>('kernel.stats')).grants).toMatchObject({ nrFrames: 5, growths: 1, granted: 2 * PAGES });
    const rwMap = await importer.call<Mapped>('map.grants', { dom: exporter.domid, refs: rwRefs, readonly: false });
    expect(rwMap.mapRequests).toBe(1);
    expect(await exporter.call('mem.checksum', { buf: rw.buf })).toMatchObject({ zero: true }); // scrubbed on allocation
    await importer.call('map.fill', { map: rwMap.map, seed: 22 });
    expect(await exporter.call('mem.check', { buf: rw.buf, seed: 22 })).toEqual({ ok: true, badPage: -1 });

    // No message carried the bytes: 2 x 4.4 MB moved, a few kB of frames on either connection.
    const moved = 2 * PAGES * PAGE_SIZE;
    for (const vm of [exporter, importer]) {
      const { wire } = await vm.call<GuestKernelStats>('kernel.stats');
      expect(wire.bytesIn + wire.bytesOut).toBeLessThan(moved / 50);
      expect(wire.largestFrame).toBeLessThan(PAGE_SIZE * 8);
    }

    // Orderly teardown: unmap, then every grant ends and the pages go back scrubbed.
    await importer.call('map.unmap', { map: roMap.map });
    await importer.call('map.unmap', { map: rwMap.map });
    for (const [refs, buf] of [[roRefs, ro.buf], [rwRefs, rw.buf]] as const) {
      const rel = await exporter.call<{ release: number; pending: number }>('grant.revoke', { refs, buf });
      expect(rel.pending).toBe(0);
    }
    const s = await exporter.call<GuestKernelStats>('kernel.stats');
    expect(s.grants).toMatchObject({ granted: 0, deferred: 0 });
    expect(s.usedPages).toBe(0);
    expect((await importer.call<GuestKernelStats>('kernel.stats')).mapper.liveMappings).toBe(0);
    expect(await domainStats(run, exporter.domid)).toMatchObject({ grantsInUse: 0, busyGrants: 0 });
    expect(await domainStats(run, importer.domid)).toMatchObject({ mappings: 0 });
  });

  it('(b) a third domain mapping the grant gets GNTST_permission_denied, and nothing stays pinned', async () => {
    const run = await startRun();
    const [exporter, importer, third] = await Promise.all([startVm(run, 'exporter'), startVm(run, 'importer'), startVm(run, 'third')]);
    const a = await exporter.call<Alloc>('mem.alloc', { pages: 64 });
    const { refs } = await exporter.call<{ refs: Uint32Array }>('grant.many', { buf: a.buf, domid: importer.domid, readonly: true });

    const err = await third.call('map.grants', { dom: exporter.domid, refs, readonly: true }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_GRANT_MAP', details: { failed: 64, counts: { GNTST_permission_denied: 64 } } });
    expect((err as Error).message).toMatch(/GNTST_permission_denied x64/);

    // A mixed batch: one entry is granted to the third domain, the rest are not. The one that
    // succeeded is released before the error is reported (XSA-361), so nothing stays mapped or busy.
    const b = await exporter.call<Alloc>('mem.alloc', { pages: 1 });
    const { refs: mine } = await exporter.call<{ refs: Uint32Array }>('grant.many', { buf: b.buf, domid: third.domid, readonly: true });
    const mixed = Uint32Array.from([refs[0]!, mine[0]!, refs[1]!]);
    const err2 = await third.call('map.grants', { dom: exporter.domid, refs: mixed, readonly: true }).catch((e: unknown) => e);
    expect(err2).toMatchObject({ code: 'ERR_GRANT_MAP', details: { failed: 2, counts: { GNTST_okay: 1, GNTST_permission_denied: 2 } } });
    const t = await third.call<GuestKernelStats>('kernel.stats');
    expect(t.mapper).toMatchObject({ liveMappings: 0, failedMaps: 2 });
    expect(t.mapper.unmapRequests).toBe(1);
    expect(await domainStats(run, third.domid)).toMatchObject({ mappings: 0 });
    expect(await domainStats(run, exporter.domid)).toMatchObject({ busyGrants: 0, grantsInUse: 65 });
    // The rightful importer is unaffected.
    const ok = await importer.call<Mapped>('map.grants', { dom: exporter.domid, refs, readonly: true });
    expect(ok.pages).toBe(64);
    await importer.call('map.unmap', { map: ok.map });
    expect(await domainStats(run, exporter.domid)).toMatchObject({ busyGrants: 0 });
  });

  it('grant copy, event channels and ECHO between VM processes', async () => {
    const run = await startRun();
    const [exporter, importer, third] = await Promise.all([startVm(run, 'exporter'), startVm(run, 'importer'), startVm(run, 'third')]);
    const a = await exporter.call<Alloc>('mem.alloc', { pages: 16 });
    await exporter.call('mem.fill', { buf: a.buf, seed: 77 });
    const { refs } = await exporter.call<{ refs: Uint32Array }>('grant.many', { buf: a.buf, domid: importer.domid, readonly: true });

    // Copy semantics: the backend copies granted pages into the importer's own frames; nothing is mapped.
    const mine = await importer.call<Alloc>('mem.alloc', { pages: 16 });
    await importer.call('copy.fromGrants', { dom: exporter.domid, refs, buf: mine.buf });
    expect(await importer.call('mem.check', { buf: mine.buf, seed: 77 })).toMatchObject({ ok: true });
    await expect(third.call('copy.fromGrants', { dom: exporter.domid, refs, buf: (await third.call<Alloc>('mem.alloc', { pages: 16 })).buf }))
      .rejects.toMatchObject({ code: 'ERR_GRANT_COPY', details: { counts: { GNTST_permission_denied: 16 } } });
    // Copying into a read-only grant is refused.
    await expect(importer.call('copy.toGrants', { dom: exporter.domid, refs, buf: mine.buf })).rejects.toMatchObject({ code: 'ERR_GRANT_COPY' });
    expect(await domainStats(run, exporter.domid)).toMatchObject({ busyGrants: 0 });

    // Event channels: the exporter offers a port to the importer only.
    const { port: offered } = await exporter.call<{ port: number }>('evtchn.allocUnbound', { remoteDom: importer.domid });
    await expect(third.call('evtchn.bind', { remoteDom: exporter.domid, remotePort: offered })).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
    const { port: bound } = await importer.call<{ port: number }>('evtchn.bind', { remoteDom: exporter.domid, remotePort: offered });
    const woke = exporter.call('evtchn.wait', { port: offered, count: 3 });
    for (let i = 0; i < 3; i++) await importer.call('evtchn.send', { port: bound });
    expect(await woke).toEqual({ received: 3 });
    expect(await importer.call('evtchn.status', { port: bound })).toMatchObject({ state: 'interdomain', remoteDom: exporter.domid, remotePort: offered });
    await importer.call('evtchn.close', { port: bound });
    expect(await exporter.call('evtchn.status', { port: offered })).toMatchObject({ state: 'unbound' });

    // ECHO: a routed peer round trip, answered by the peer's kernel.
    expect(await importer.call('echo', { dst: exporter.domid, bytes: 100_000 })).toEqual({ bytes: 100_000 });
  });

  it('(c) a write through a read-only mapping faults: the VM process dies with SIGSEGV or SIGBUS', async () => {
    const run = await startRun();
    const [exporter, importer] = await Promise.all([startVm(run, 'exporter'), startVm(run, 'importer')]);
    const a = await exporter.call<Alloc>('mem.alloc', { pages: 4 });
    await exporter.call('mem.fill', { buf: a.buf, seed: 3 });
    const { refs } = await exporter.call<{ refs: Uint32Array }>('grant.many', { buf: a.buf, domid: importer.domid, readonly: true });
    const m = await importer.call<Mapped>('map.grants', { dom: exporter.domid, refs, readonly: true });
    expect(await importer.call('map.check', { map: m.map, seed: 3 })).toMatchObject({ ok: true });

    const died = nextEvent<{ domid: number }>(exporter, 'peerDied', (d) => d.domid === importer.domid);
    const err = await importer.call('map.writeByte', { map: m.map, offset: PAGE_SIZE + 5, value: 0xee }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_CHILD_EXITED' });
    const exit = await importer.exited;
    expect(['SIGSEGV', 'SIGBUS']).toContain(exit.signal);
    // The exporter's page is unchanged, and once the backend has cleaned up after the dead importer, access ends.
    await died;
    expect(await exporter.call('mem.check', { buf: a.buf, seed: 3 })).toMatchObject({ ok: true });
    expect(await exporter.call('grant.end', { refs })).toMatchObject({ ended: 4, busy: 0 });
  });

  it('(d) ending access while mapped reports busy; it succeeds after unmap, and the unmapped view is detached', async () => {
    const run = await startRun();
    const [exporter, importer] = await Promise.all([startVm(run, 'exporter', 4096, 4), startVm(run, 'importer')]);
    const a = await exporter.call<Alloc>('mem.alloc', { pages: 32 });
    const { refs } = await exporter.call<{ refs: Uint32Array }>('grant.many', { buf: a.buf, domid: importer.domid, readonly: false });
    const m = await importer.call<Mapped>('map.grants', { dom: exporter.domid, refs, readonly: false });
    expect(await domainStats(run, exporter.domid)).toMatchObject({ busyGrants: 32 });

    expect(await exporter.call('grant.end', { refs })).toMatchObject({ ended: 0, busy: 32 });
    // The entries are untouched by the refusal: the mapping still works.
    await importer.call('map.fill', { map: m.map, seed: 5 });
    expect(await exporter.call('mem.check', { buf: a.buf, seed: 5 })).toMatchObject({ ok: true });

    expect(await importer.call('map.unmap', { map: m.map })).toEqual({ byteLength: 0, state: 'unmapped' });
    expect(await importer.call('map.info', { map: m.map })).toEqual({ state: 'unmapped', byteLength: 0, pages: 32 });
    expect(await importer.call('map.unmap', { map: m.map })).toEqual({ byteLength: 0, state: 'unmapped' }); // idempotent
    expect(await exporter.call('grant.end', { refs })).toMatchObject({ ended: 32, busy: 0 });
    const s = await importer.call<GuestKernelStats>('kernel.stats');
    expect(s.mapper).toMatchObject({ liveMappings: 0, mapRequests: 1, unmapRequests: 1 });
    expect(await domainStats(run, importer.domid)).toMatchObject({ mappings: 0 });

    // At the domain's maximum (4 frames here) the grant table cannot grow: ERR_LIMIT, nothing granted.
    const big = await exporter.call<Alloc>('mem.alloc', { pages: 2048 });
    await expect(exporter.call('grant.many', { buf: big.buf, domid: importer.domid, readonly: true }))
      .rejects.toMatchObject({ code: 'ERR_LIMIT', message: expect.stringMatching(/maximum of 4/) });
    expect((await exporter.call<GuestKernelStats>('kernel.stats')).grants).toMatchObject({ nrFrames: 4, granted: 0 });
  });

  it('(e) kill -9 of the importer while it holds mappings: the backend clears them and the exporter revokes everything', async () => {
    const run = await startRun();
    const [exporter, importer] = await Promise.all([startVm(run, 'exporter'), startVm(run, 'importer')]);
    const a = await exporter.call<Alloc>('mem.alloc', { pages: PAGES });
    await exporter.call('mem.fill', { buf: a.buf, seed: 9 });
    const { refs } = await exporter.call<{ refs: Uint32Array }>('grant.many', { buf: a.buf, domid: importer.domid, readonly: false });
    const half = refs.length / 2;
    await importer.call<Mapped>('map.grants', { dom: exporter.domid, refs: refs.subarray(0, half), readonly: true });
    await importer.call<Mapped>('map.grants', { dom: exporter.domid, refs: refs.subarray(half), readonly: false });
    expect(await domainStats(run, importer.domid)).toMatchObject({ mappings: PAGES });
    expect(await domainStats(run, exporter.domid)).toMatchObject({ busyGrants: PAGES });

    // The exporter starts revoking: every ref is busy, so all are deferred and the pages stay allocated.
    const rel = await exporter.call<{ release: number; pending: number }>('grant.revoke', { refs, buf: a.buf });
    expect(rel.pending).toBe(PAGES);
    const revoked = exporter.call('grant.awaitRevoked', { release: rel.release });

    const died = nextEvent<{ domid: number; mappingsReleased: number }>(exporter, 'peerDied', (d) => d.domid === importer.domid);
    importer.kill('SIGKILL');
    expect((await importer.exited).signal).toBe('SIGKILL');
    expect((await died).mappingsReleased).toBe(PAGES);

    // DOMAIN_DIED made the exporter retry at once: all ended, pages scrubbed and freed.
    expect(await revoked).toEqual({ state: 'released' });
    const s = await exporter.call<GuestKernelStats>('kernel.stats');
    expect(s.grants).toMatchObject({ granted: 0, deferred: 0 });
    expect(s.usedPages).toBe(0);
    expect(await domainStats(run, exporter.domid)).toMatchObject({ busyGrants: 0, grantsInUse: 0 });
    const gone = await domainStats(run, importer.domid);
    if (gone) expect(gone).toMatchObject({ mappings: 0, connected: false });

    // Teardown: the exporter shuts down cleanly; afterEach checks no process and no shm file remain.
    expect(await exporter.shutdown()).toEqual({ code: 0, signal: null });
  });
});
