/**
 * The fence layer between in-process peers over a real backend: sharing,
 * export, wake-up by event channel, errors, sync_files, owner and observer
 * crashes, hostile references, and that every grant, mapping, port, slot
 * and page is released.
 */
import { describe, expect, it } from 'vitest';
import { FENCE_EXPORT, FENCE_SLOTS_RELEASE } from '../../protocol/messages/fence.ts';
import { DmaResv, DmaResvUsage } from '../../src/fence/dma-resv.ts';
import { ECANCELED, EIO, ENOENT } from '../../src/fence/errno.ts';
import { mergeFences, unwrapFences } from '../../src/fence/unwrap.ts';
import { SwSyncTimeline } from '../../src/fence/sw-sync.ts';
import { SyncFile } from '../../src/fence/sync-file.ts';
import { DmaFenceArray } from '../../src/fence/fence-array.ts';
import { FENCE_ERR_OWNER_DIED } from '../../src/fence/errno.ts';
import { RemoteFence } from '../../src/fence-remote/remote-fence.ts';
import { FenceHost } from '../../src/fence-remote/fence-host.ts';
import { afterFramesOf, crash, domainStats, fenceResources, NOTHING, startPeers } from './pair.ts';

describe('fence host: in-process peers over a real backend', () => {
  it('shares a timeline once, wakes the waiter through the event channel, and releases everything on destroy', async () => {
    const { hv, peers: [a, b] } = await startPeers(2);
    const tl = a!.host.createTimeline('render');
    const f1 = tl.createFence(1);
    await a!.host.exportFence(b!.domid, f1, { cookie: 1 });
    await a!.host.exportFence(b!.domid, tl.createFence(2), { cookie: 2 });
    expect(a!.host.stats().owner.shares.mapped).toBe(1);
    expect(fenceResources(b!)).toMatchObject({ imports: 1, mappings: 1, ports: 1 });

    const r1 = await b!.host.takeImport(a!.domid, 1);
    const leaf = r1.fence as RemoteFence;
    expect(leaf).toBeInstanceOf(RemoteFence);
    expect(leaf.timelineName).toBe(`render@d${a!.domid}`);
    expect(await leaf.wait(0)).toBe(0);
    expect(await leaf.wait(20)).toBe(0);
    const waiting = leaf.wait(5000);
    tl.signal(1);
    expect(await waiting).toBeGreaterThan(0);
    expect(leaf.getStatus()).toBe(1);
    await afterFramesOf([a!], () => a!.host.stats().owner.slotHolds === 1, 'the owner got the slot count back (FENCE_SLOTS_RELEASE)');

    const r2 = await b!.host.takeImport(a!.domid, 2);
    tl.signal(2, EIO);
    expect(await r2.fence.wait(5000)).toBeGreaterThan(0);
    expect(r2.fence.getStatus()).toBe(EIO);
    await afterFramesOf([a!], () => a!.host.stats().owner.slotsUsed === 0, 'every slot of the owner free');
    expect(b!.host.stats().observer).toMatchObject({ signalled: 1, errored: 1, pendingPoints: 0, slotHolds: 0 });

    await a!.host.destroyTimeline(tl);
    expect(fenceResources(a!)).toEqual(NOTHING);
    expect(fenceResources(b!)).toEqual(NOTHING);
    expect(domainStats(hv, a!.domid)).toMatchObject({ grantsInUse: 0, busyGrants: 0, ports: 0 });
    expect(domainStats(hv, b!.domid)).toMatchObject({ mappings: 0, ports: 0 });
  });

  it('carries a sync_file of several leaves: two timelines, a bridged sw_sync point and a signalled error, with FILE_INFO statuses', async () => {
    const { peers: [a, b] } = await startPeers(2);
    const t1 = a!.host.createTimeline('t1');
    const t2 = a!.host.createTimeline('t2');
    const sw = new SwSyncTimeline('sw');
    const failed = t1.createFence(1);
    t1.signal(1, EIO);
    const file = SyncFile.create(new DmaFenceArray([failed, t1.createFence(5), t2.createFence(3), sw.createPoint(2)], 99, 1, false), 'frame');
    await a!.host.exportFence(b!.domid, file, { cookie: 7, name: 'frame' });
    const got = await b!.host.takeImport(a!.domid, 7);
    expect(got.name).toBe('frame');
    let info = got.getInfo({ numFences: 4 });
    expect(info.fences.map((f) => f.status)).toEqual([EIO, 0, 0, 0]);
    expect(info.status).toBe(EIO);
    expect(info.fences.map((f) => f.driverName)).toEqual(['hdmabuf-remote', 'hdmabuf-remote', 'hdmabuf-remote', 'hdmabuf-remote']);
    expect(a!.host.stats()).toMatchObject({ bridges: 1, bridged: 1 });

    t1.signal(5);
    t2.signal(3);
    sw.inc(1);
    // The signals reach the importer by page and event channel: wait for the two leaves that must signal.
    const statuses = (): number[] => got.getInfo({ numFences: 4 }).fences.map((f) => f.status);
    const leaves = [...unwrapFences(got.fence)];
    expect((await Promise.all([leaves[1]!.wait(10_000), leaves[2]!.wait(10_000)])).every((r) => r > 0)).toBe(true);
    expect(statuses()).toEqual([EIO, 1, 1, 0]);
    sw.inc(1);
    expect(await got.wait(5000)).toBe(1);
    info = got.getInfo({ numFences: 4 });
    expect(info.fences.map((f) => f.status)).toEqual([EIO, 1, 1, 1]);
    expect(await a!.host.releaseIdleBridges()).toBe(1);
    await a!.host.destroyTimeline(t1);
    await a!.host.destroyTimeline(t2);
    expect(fenceResources(a!)).toEqual(NOTHING);
    expect(fenceResources(b!)).toEqual(NOTHING);
  });

  it('imported fences merge with local ones, dedup per timeline, and go into a reservation object', async () => {
    const { peers: [a, b] } = await startPeers(2);
    const tl = a!.host.createTimeline('merge');
    for (const s of [1, 2, 3]) await a!.host.exportFence(b!.domid, tl.createFence(s), { cookie: s });
    const [f1, f2, f3] = await Promise.all([1, 2, 3].map((c) => b!.host.takeImport(a!.domid, c)));
    const local = new SwSyncTimeline('local');
    const merged = SyncFile.create(mergeFences(f1!.fence, f2!.fence, f3!.fence, local.createPoint(1)));
    expect(merged.getInfo().numFences).toBe(2); // latest remote point + the local one
    const resv = new DmaResv();
    resv.addFence(f2!.fence, DmaResvUsage.WRITE);
    resv.addFence(f1!.fence, DmaResvUsage.WRITE); // earlier, same context: never replaces f2
    expect(resv.getFences(DmaResvUsage.WRITE)).toEqual([f2!.fence, f1!.fence]);
    expect(resv.testSignaled(DmaResvUsage.READ)).toBe(false);
    tl.signal(2);
    expect(await f2!.fence.wait(10_000)).toBeGreaterThan(0); // the signal reached the importer (page and event); f1, earlier, with it
    expect(resv.testSignaled(DmaResvUsage.READ)).toBe(true);
    expect(merged.poll()).toBe(0);
    tl.signal(3);
    local.inc(1);
    expect(await merged.wait(5000)).toBe(1);
  });

  it('owner crash: every pending import signals -EPIPE at once, and the observer releases its mapping and port', async () => {
    const { hv, peers: [a, b] } = await startPeers(2);
    const tl = a!.host.createTimeline('doomed');
    const exports = [1, 2, 3].map((s) => a!.host.exportFence(b!.domid, tl.createFence(s), { cookie: s }));
    await Promise.all(exports);
    tl.signal(1);
    const files = await Promise.all([1, 2, 3].map((c) => b!.host.takeImport(a!.domid, c)));
    const waits = files.map((f) => f.fence.wait(10_000));
    const neverExported = b!.host.takeImport(a!.domid, 99, 10_000);
    await crash(a!);
    await expect(neverExported).rejects.toMatchObject({ code: 'ERR_PEER_GONE' });
    await expect(b!.host.takeImport(a!.domid, 100, 10_000)).rejects.toMatchObject({ code: 'ERR_PEER_GONE' });
    // Each wait ended with the owner's death (-EPIPE), not its 10 s limit (which returns 0): no clock needed.
    const rets = await Promise.all(waits);
    expect(rets.every((r) => r > 0)).toBe(true);
    expect(files.map((f) => f.fence.getStatus())).toEqual([1, FENCE_ERR_OWNER_DIED, FENCE_ERR_OWNER_DIED]);
    await afterFramesOf([b!], () => fenceResources(b!).mappings === 0 && fenceResources(b!).ports === 0, 'the observer unmapped the page and closed the port');
    expect(fenceResources(b!)).toEqual(NOTHING);
    await afterFramesOf([b!], () => domainStats(hv, a!.domid) === undefined, 'the dead owner removed once unmapped');
  });

  it('observer crash: the owner drops its counts, closes the share, and the page is freed on destroy', async () => {
    const { hv, peers: [a, b, c] } = await startPeers(3);
    const tl = a!.host.createTimeline('shared');
    const p = tl.createFence(1);
    await a!.host.exportFence(b!.domid, p, { cookie: 1 });
    await a!.host.exportFence(c!.domid, p, { cookie: 1 });
    expect(a!.host.stats().owner).toMatchObject({ slotsUsed: 1, slotHolds: 2 });
    await crash(b!);
    await afterFramesOf([a!], () => a!.host.stats().owner.slotHolds === 1, 'the owner dropped the dead observer\'s counts');
    expect(a!.host.stats().owner.shares).toMatchObject({ mapped: 1, closed: 0 });
    tl.signal(1);
    const got = await c!.host.takeImport(a!.domid, 1);
    expect(await got.fence.wait(5000)).toBeGreaterThan(0);
    await afterFramesOf([a!], () => a!.host.stats().owner.slotsUsed === 0, 'every slot of the owner free');
    await a!.host.destroyTimeline(tl);
    expect(fenceResources(a!)).toEqual(NOTHING);
    expect(fenceResources(c!)).toEqual(NOTHING);
    expect(domainStats(hv, a!.domid)).toMatchObject({ grantsInUse: 0, busyGrants: 0 });
  });

  it('destroying a timeline signals the observer\'s pending imports with -ENOENT; unsharing with -ECANCELED', async () => {
    const { peers: [a, b, c] } = await startPeers(3);
    const tl = a!.host.createTimeline('short');
    const p = tl.createFence(4);
    await a!.host.exportFence(b!.domid, p, { cookie: 1 });
    await a!.host.exportFence(c!.domid, p, { cookie: 1 });
    const fb = (await b!.host.takeImport(a!.domid, 1)).fence;
    const fc = (await c!.host.takeImport(a!.domid, 1)).fence;
    await a!.host.owner.unshare(tl, c!.domid);
    expect(fc.getStatus()).toBe(ECANCELED);
    expect(fenceResources(c!)).toEqual(NOTHING);
    expect(fb.getStatus()).toBe(0);
    await a!.host.destroyTimeline(tl);
    expect(fb.getStatus()).toBe(ENOENT);
    expect(p.getStatus()).toBe(ENOENT);
    expect(fenceResources(a!)).toEqual(NOTHING);
    expect(fenceResources(b!)).toEqual(NOTHING);
  });

  it('refuses hostile references with nothing held, and ignores releases of counts not held', async () => {
    const { peers: [a, b] } = await startPeers(2);
    const tl = a!.host.createTimeline('victim');
    await a!.host.shareTimeline(tl, b!.domid);
    const p = tl.createFence(10);
    const hold = a!.host.owner.hold(p, b!.domid) as { slot: number };
    const send = (fences: unknown[], cookie = 1) => a!.kernel.hv.peerRequest(FENCE_EXPORT, b!.domid, { cookie, fences } as never);
    await expect(send([{ tl: tl.id, seqno: 11, slot: hold.slot }])).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
    await expect(send([{ tl: tl.id + 1, seqno: 10, slot: hold.slot }])).rejects.toMatchObject({ code: 'ERR_FENCE_UNKNOWN_TIMELINE' });
    await expect(send([{ tl: tl.id, seqno: 10, slot: hold.slot, status: 1 }])).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
    await expect(send([{ tl: tl.id, seqno: 10 }])).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
    await expect(send([])).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
    // A good reference followed by a bad one: the good one is not imported either.
    await expect(send([{ tl: tl.id, seqno: 10, slot: hold.slot }, { tl: tl.id, seqno: 12, slot: 200 }])).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
    expect(b!.host.stats().observer).toMatchObject({ pendingPoints: 0, slotHolds: 0 });
    expect(b!.host.stats().importErrors).toBe(6);
    // A third party (here: the owner itself, pretending) cannot drop b's counts... and b's bogus releases are ignored.
    b!.kernel.hv.peerNotify(FENCE_SLOTS_RELEASE, a!.domid, { tl: tl.id, slots: [hold.slot, hold.slot, 100] });
    await afterFramesOf([a!], () => a!.host.stats().owner.releasesReceived + a!.host.stats().owner.releasesIgnored === 3, 'the owner handled the three releases');
    expect(a!.host.stats().owner).toMatchObject({ releasesReceived: 1, releasesIgnored: 2, slotsUsed: 0 });
  });

  it('a refused export returns its slot counts; a duplicate cookie is refused', async () => {
    const { peers: [a, b] } = await startPeers(2);
    const tl = a!.host.createTimeline('dup');
    await a!.host.exportFence(b!.domid, tl.createFence(1), { cookie: 5 });
    await expect(a!.host.exportFence(b!.domid, tl.createFence(2), { cookie: 5 })).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
    expect(a!.host.stats().owner).toMatchObject({ slotsUsed: 1, slotHolds: 1 });
    expect(a!.host.stats().exportErrors).toBe(1);
  });

  it('exports to a peer whose inbox is full fail with ERR_LIMIT', async () => {
    const { peers: [a, b] } = await startPeers(2, { maxInboxPerPeer: 2 });
    const tl = a!.host.createTimeline('full');
    await a!.host.exportFence(b!.domid, tl.createFence(1), { cookie: 1 });
    await a!.host.exportFence(b!.domid, tl.createFence(1), { cookie: 2 });
    await expect(a!.host.exportFence(b!.domid, tl.createFence(1), { cookie: 3 })).rejects.toMatchObject({ code: 'ERR_LIMIT' });
    await b!.host.takeImport(a!.domid, 1);
    await a!.host.exportFence(b!.domid, tl.createFence(1), { cookie: 3 });
  });

  it('shutdown completes the observer\'s imports with -ECANCELED, tells the owner\'s observers, and removes the handlers', async () => {
    const { peers: [a, b] } = await startPeers(2);
    const tl = a!.host.createTimeline('bye');
    const mine = b!.host.createTimeline('mine');
    await a!.host.exportFence(b!.domid, tl.createFence(1), { cookie: 1 });
    await b!.host.exportFence(a!.domid, mine.createFence(1), { cookie: 1 });
    const inB = (await b!.host.takeImport(a!.domid, 1)).fence;
    const inA = (await a!.host.takeImport(b!.domid, 1)).fence;
    const taker = b!.host.takeImport(a!.domid, 2).catch((e: unknown) => e);
    await b!.host.shutdown();
    expect(await taker).toMatchObject({ code: 'ERR_STATE' });
    expect(inB.getStatus()).toBe(ECANCELED);
    expect(inA.getStatus()).toBe(ENOENT); // b destroyed its timeline: a's import of it completed
    expect(fenceResources(b!)).toEqual(NOTHING);
    // b told a it detached: a closed the share, so nothing of a is held for b any more.
    await afterFramesOf([a!], () => a!.host.stats().owner.shares.mapped === 0, 'the owner closed the share (FENCE_TIMELINE_DETACHED)');
    expect(a!.host.stats().owner).toMatchObject({ grantsLive: 0, slotHolds: 0 });
    // With no fence layer on b, a new share is refused (no handler) and leaves nothing behind.
    await expect(a!.host.exportFence(b!.domid, tl.createFence(2), { cookie: 2 })).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_LAYER' });
    expect(a!.host.stats().owner).toMatchObject({ grantsLive: 0, slotHolds: 0, shares: { offered: 0, mapped: 0 } });
    // A new host can take the kernel over.
    const again = new FenceHost(b!.kernel);
    await a!.host.exportFence(b!.domid, tl.createFence(3), { cookie: 3 });
    expect((await again.takeImport(a!.domid, 3)).fence.getStatus()).toBe(0);
    await again.shutdown();
  });
});
