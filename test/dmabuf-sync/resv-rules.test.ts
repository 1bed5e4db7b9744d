/**
 * The add rule of a shared buffer's reservation object across VMs
 * (SPEC.md 11A.7), in process: the same fence twice, promotion and no
 * degradation, bookkeep fences outside implicit sync, signalled entries
 * recycled, fences of different domains never "the same timeline", kernel
 * fences for the exporter only, and one reservation object for every export
 * of a buffer.
 */
import { describe, expect, it } from 'vitest';
import { DmaResvUsage } from '../../src/fence/dma-resv.ts';
import { toRemoteFence } from '../../src/fence-remote/remote-fence.ts';
import { codeOf, share, startSyncWorld, unshare, type Shared, type SyncDom } from './world.ts';

/** (origin, seqno, usage, signalled) of every entry, in order. */
function entries(exp: SyncDom, s: Shared): string[] {
  return [...exp.sync.registry.get(s.buf)!.resv.fences(DmaResvUsage.BOOKKEEP)].map((e) =>
    `d${toRemoteFence(e.fence)?.owner ?? exp.domid}:${e.fence.seqno}:${['kernel', 'write', 'read', 'bookkeep'][e.usage]}${e.fence.isSignaled() ? ':done' : ''}`);
}

describe('the add rule across VMs', () => {
  it('the same pending fence twice replaces itself; read then write promotes; write then read appends (no degrade)', async () => {
    const { doms: [exp, imp] } = await startSyncWorld(2);
    const s = await share(exp!, imp!);
    const tl = imp!.fences.createTimeline('gpu');
    const a = tl.createFence(1);
    expect(await imp!.sync.addFence(s.fd, a, 'read')).toEqual({ replaced: 0, appended: 1 });
    expect(await imp!.sync.addFence(s.fd, a, 'read')).toEqual({ replaced: 1, appended: 0 });
    expect(await imp!.sync.addFence(s.fd, a, 'write')).toEqual({ replaced: 1, appended: 0 });
    expect(entries(exp!, s)).toEqual([`d${imp!.domid}:1:write`]);
    // Now a write fence: a read waits for it.
    expect((await exp!.sync.pendingFences(s.buf, 'write')).length).toBe(1);
    const b = tl.createFence(2);
    await imp!.sync.addFence(s.fd, b, 'write');
    expect(await imp!.sync.addFence(s.fd, b, 'read')).toEqual({ replaced: 0, appended: 1 });
    expect(entries(exp!, s)).toEqual([`d${imp!.domid}:2:write`, `d${imp!.domid}:2:read`]);
    tl.signal(2);
    await unshare(exp!, s);
  });

  it('bookkeep fences hold no implicit access until promoted; signalled entries are recycled by any add', async () => {
    const { doms: [exp, imp] } = await startSyncWorld(2);
    const s = await share(exp!, imp!);
    const tl = imp!.fences.createTimeline('preempt');
    const f = tl.createFence(1);
    await imp!.sync.addFence(s.fd, f, 'bookkeep');
    await s.buf.beginCpuAccess('to_device', { timeoutMs: 100 });
    await s.buf.endCpuAccess('to_device');
    const pending = await exp!.sync.pendingFences(s.buf, 'bookkeep');
    expect(pending.length).toBe(1);
    expect(await imp!.sync.addFence(s.fd, f, 'read')).toEqual({ replaced: 1, appended: 0 });
    expect(await codeOf(s.buf.beginCpuAccess('to_device', { timeoutMs: 30 }))).toBe('ERR_TIMEOUT');
    tl.signal(1);
    // The exporter's copy of the importer's point signals when the importer's event reaches it.
    expect(await pending[0]!.fence.wait(10_000)).toBeGreaterThan(0);
    expect(exp!.sync.registry.get(s.buf)!.size().pending).toBe(0);
    const etl = exp!.fences.createTimeline('unrelated');
    expect(await exp!.sync.addFence(s.buf, etl.createFence(1), 'write')).toEqual({ replaced: 1, appended: 0 });
    expect(entries(exp!, s)).toEqual([`d${exp!.domid}:1:write`]);
    etl.signal(1);
    await unshare(exp!, s);
  });

  it('fences of different domains never count as one timeline, whatever their seqnos', async () => {
    const { doms: [exp, imp, other] } = await startSyncWorld(3);
    const s = await share(exp!, imp!);
    const hid2 = await exp!.driver.exportRemote(s.buf, other!.domid);
    other!.driver.tryReadEvent();
    const fd2 = await other!.driver.exportFd(hid2);
    const etl = exp!.fences.createTimeline('t');
    const itl = imp!.fences.createTimeline('t');
    const otl = other!.fences.createTimeline('t');
    await exp!.sync.addFence(s.buf, etl.createFence(5), 'write');
    await imp!.sync.addFence(s.fd, itl.createFence(9), 'write');
    await other!.sync.addFence(fd2 as Shared['fd'], otl.createFence(9), 'write');
    // The exporter re-adding its own later point replaces only its own.
    expect(await exp!.sync.addFence(s.buf, etl.createFence(6), 'write')).toEqual({ replaced: 1, appended: 0 });
    expect(entries(exp!, s)).toEqual([`d${exp!.domid}:6:write`, `d${imp!.domid}:9:write`, `d${other!.domid}:9:write`]);
    // Every importer of the buffer sees the same one reservation object (the others' fences bridged).
    expect((await imp!.sync.pendingFences(s.fd, 'write')).length).toBe(3);
    expect((await other!.sync.pendingFences(fd2, 'write')).length).toBe(3);
    etl.signal(6);
    itl.signal(9);
    otl.signal(9);
    await fd2.put();
    await exp!.driver.unexport(hid2);
    await exp!.driver.waitReleased(hid2, 10_000);
    await exp!.fences.releaseIdleBridges();
    await unshare(exp!, s);
  });

  it('kernel fences are the exporter\'s own: an importer cannot add one', async () => {
    const { doms: [exp, imp] } = await startSyncWorld(2);
    const s = await share(exp!, imp!);
    const tl = imp!.fences.createTimeline('k');
    expect(await codeOf(imp!.sync.addFence(s.fd, tl.createFence(1), 'kernel'))).toBe('ERR_BAD_ARGUMENT');
    const etl = exp!.fences.createTimeline('move');
    await exp!.sync.addFence(s.buf, etl.createFence(1), 'kernel');
    // A kernel fence holds every access, reads included, on both sides.
    expect(await codeOf(s.fd.beginCpuAccess('from_device', { timeoutMs: 30 }))).toBe('ERR_TIMEOUT');
    expect(await codeOf(s.buf.beginCpuAccess('from_device', { timeoutMs: 30 }))).toBe('ERR_TIMEOUT');
    etl.signal(1);
    tl.signal(1);
    await s.fd.beginCpuAccess('from_device', { timeoutMs: 1000 });
    await s.fd.endCpuAccess('from_device');
    await unshare(exp!, s);
  });
});
