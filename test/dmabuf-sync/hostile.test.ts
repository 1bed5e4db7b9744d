/**
 * The reservation object of a shared buffer against a hostile VM, in
 * process: the buffer is exported to an honest importer and to a hostile
 * one, which sends DMABUF_RESV_ADD itself (raw requests, no client-side
 * checks) to add an earlier fence, an unrelated fence, a fence with a
 * degraded usage, fences to a buffer not exported to it, malformed
 * references, and too many fences. Each is refused or appended by Linux's
 * dma_resv_add_fence rule; no unsignalled fence ever leaves the object
 * (CVE-2022-49935), and the exporter and the honest importer go on
 * unaffected.
 */
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame } from '../../protocol/codec.ts';
import type { RequestOf } from '../../protocol/message.ts';
import { DMABUF_RESV_ADD } from '../../protocol/messages/dmabuf-sync.ts';
import type { FENCE_REF } from '../../protocol/messages/fence.ts';
import type { Infer } from '../../protocol/schema.ts';
import { DmaResvUsage } from '../../src/fence/dma-resv.ts';
import { toRemoteFence } from '../../src/fence-remote/remote-fence.ts';
import type { SharedTimeline } from '../../src/fence-remote/shared-timeline.ts';
import { codeOf, share, startSyncWorld, type Shared, type SyncDom } from './world.ts';

type Ref = Infer<(typeof FENCE_REF)['fields']>;

/** What the exporter's reservation object holds, as (origin, seqno, usage, signalled). */
function entries(exp: SyncDom, s: Shared): Array<{ dom: number; seqno: number; usage: string; signalled: boolean }> {
  const resv = exp.sync.registry.get(s.buf)!.resv;
  return [...resv.fences(DmaResvUsage.BOOKKEEP)].map((e) => ({
    dom: toRemoteFence(e.fence)?.owner ?? exp.domid,
    seqno: e.fence.seqno,
    usage: ['kernel', 'write', 'read', 'bookkeep'][e.usage]!,
    signalled: e.fence.isSignaled(),
  }));
}

/** A raw DMABUF_RESV_ADD from `from` for the export `s`, with references prepared by the fence layer (held until answered or aborted). */
async function rawAdd(from: SyncDom, exp: SyncDom, s: Shared, tl: SharedTimeline, seqnos: number[], usage: 'write' | 'read' | 'bookkeep', mutate?: (refs: Ref[]) => Ref[]): Promise<{ replaced: number; appended: number }> {
  const prepared = await from.fences.prepareExport(exp.domid, tl.createFence(seqnos[0]!));
  const more = await Promise.all(seqnos.slice(1).map((q) => from.fences.prepareExport(exp.domid, tl.createFence(q))));
  const refs = [...prepared.refs, ...more.flatMap((p) => p.refs)];
  const body: RequestOf<typeof DMABUF_RESV_ADD> = { hid: s.hid, fdId: s.fd.priv.fdId, usage, fences: mutate ? mutate(refs) : refs };
  try {
    return await from.kernel.hv.peerRequest(DMABUF_RESV_ADD, exp.domid, body);
  } catch (e) {
    prepared.abort();
    for (const p of more) p.abort();
    throw e;
  }
}

describe('a hostile importer against a shared buffer\'s reservation object', () => {
  it('can only append (or replace its own earlier fences by later ones): never removes an unsignalled fence', async () => {
    const { doms: [exp, honest, hostile] } = await startSyncWorld(3);
    const s = await share(exp!, honest!);
    // The same buffer exported to the hostile VM too (its own id, one reservation object).
    const hid2 = await exp!.driver.exportRemote(s.buf, hostile!.domid);
    hostile!.driver.tryReadEvent();
    const hfd = await hostile!.driver.exportFd(hid2);
    const hs: Shared = { buf: s.buf, hid: hid2, fd: hfd as Shared['fd'] };

    const etl = exp!.fences.createTimeline('render');
    const itl = honest!.fences.createTimeline('sampler');
    await exp!.sync.addFence(s.buf, etl.createFence(1), 'write');
    await honest!.sync.addFence(s.fd, itl.createFence(5), 'read');
    const victims = [{ dom: exp!.domid, seqno: 1, usage: 'write', signalled: false }, { dom: honest!.domid, seqno: 5, usage: 'read', signalled: false }];
    expect(entries(exp!, s)).toEqual(victims);

    const htl = hostile!.fences.createTimeline('evil');
    const htl2 = hostile!.fences.createTimeline('evil-2');
    // Its own point 10, then an EARLIER point 3 of the same timeline: appended, 10 stays.
    expect(await rawAdd(hostile!, exp!, hs, htl, [10], 'write')).toEqual({ replaced: 0, appended: 1 });
    expect(await rawAdd(hostile!, exp!, hs, htl, [3], 'write')).toEqual({ replaced: 0, appended: 1 });
    // An unrelated fence (another timeline): appended.
    expect(await rawAdd(hostile!, exp!, hs, htl2, [1], 'write')).toEqual({ replaced: 0, appended: 1 });
    // The same point 10 with a DEGRADED usage (write -> read): appended, the write entry stays.
    expect(await rawAdd(hostile!, exp!, hs, htl, [10], 'read')).toEqual({ replaced: 0, appended: 1 });
    // A later point 12 with the same usage replaces 10 (it cannot signal before 10); promotion read -> write of 10 too.
    expect(await rawAdd(hostile!, exp!, hs, htl, [12], 'write')).toEqual({ replaced: 1, appended: 0 });
    const hd = hostile!.domid;
    expect(entries(exp!, s)).toEqual([
      ...victims,
      { dom: hd, seqno: 12, usage: 'write', signalled: false },
      { dom: hd, seqno: 3, usage: 'write', signalled: false },
      { dom: hd, seqno: 1, usage: 'write', signalled: false },
      { dom: hd, seqno: 10, usage: 'read', signalled: false },
    ]);

    // Fences for a buffer NOT exported to it: the honest importer's id, a guessed key, an fd it does not hold.
    expect(await codeOf(rawAdd(hostile!, exp!, { ...hs, hid: s.hid }, htl, [20], 'write'))).toBe('ERR_NOT_IMPORTER');
    const guessed = { ...hid2, key: new Uint8Array(16) };
    expect(await codeOf(rawAdd(hostile!, exp!, { ...hs, hid: guessed }, htl, [20], 'write'))).toBe('ERR_UNKNOWN_BUFFER');
    expect(await codeOf(rawAdd(hostile!, exp!, { ...hs, fd: { ...hfd, priv: { ...hfd.priv, fdId: 999 } } as Shared['fd'] }, htl, [20], 'write'))).toBe('ERR_BAD_ARGUMENT');

    // Malformed references, each refused whole, nothing imported.
    const cases: Array<[string, (refs: Ref[]) => Ref[], string]> = [
      ['slot tagged for another seqno', (r) => [{ ...r[0]!, seqno: r[0]!.seqno! + 1 }], 'ERR_BAD_ARGUMENT'],
      ['a timeline never shared', (r) => [{ ...r[0]!, tl: 4242 }], 'ERR_FENCE_UNKNOWN_TIMELINE'],
      ['both slot and status', (r) => [{ ...r[0]!, status: 1 }], 'ERR_BAD_ARGUMENT'],
      ['neither slot nor status', (r) => [{ tl: r[0]!.tl!, seqno: r[0]!.seqno! }], 'ERR_BAD_ARGUMENT'],
      ['tl without seqno', (r) => [{ tl: r[0]!.tl!, slot: r[0]!.slot! }], 'ERR_BAD_ARGUMENT'],
      ['status 0 (not final)', () => [{ status: 0 }], 'ERR_BAD_ARGUMENT'],
      ['a good ref followed by a bad one', (r) => [r[0]!, { ...r[0]!, slot: 250 }], 'ERR_BAD_ARGUMENT'],
      ['no fences at all', () => [], 'ERR_BAD_ARGUMENT'],
    ];
    const observed = () => exp!.fences.observer.stats().pendingPoints;
    const before = { entries: entries(exp!, s).length, pending: observed() };
    for (const [what, mutate, code] of cases) {
      expect(await codeOf(rawAdd(hostile!, exp!, hs, htl, [30], 'write', mutate)), what).toBe(code);
      expect({ entries: entries(exp!, s).length, pending: observed() }, what).toEqual(before);
    }
    // Out-of-schema values never leave the sender (and the backend's decoder refuses them the same way).
    const body = { hid: hid2, fdId: hfd.priv.fdId, usage: 'kernel', fences: [{ status: 1 }] } as unknown as RequestOf<typeof DMABUF_RESV_ADD>;
    expect(await codeOf(hostile!.kernel.hv.peerRequest(DMABUF_RESV_ADD, exp!.domid, body))).toBe('ERR_FIELD_RANGE');
    const tooMany = { ...body, usage: 'read', fences: Array.from({ length: 257 }, () => ({ status: 1 })) } as unknown as RequestOf<typeof DMABUF_RESV_ADD>;
    expect(await codeOf(hostile!.kernel.hv.peerRequest(DMABUF_RESV_ADD, exp!.domid, tooMany))).toBe('ERR_FIELD_RANGE');
    const frame = encodeFrame({ v: 1, kind: 'req', type: 'DMABUF_RESV_ADD', id: 1, src: hostile!.domid, dst: exp!.domid, body: { ...body, usage: 'read' } });
    expect(decodeFrame(frame).ok).toBe(true);

    // The victims are still there and still hold their users back; the honest importer still adds and reads.
    expect(entries(exp!, s).slice(0, 2)).toEqual(victims);
    expect(await codeOf(s.fd.beginCpuAccess('from_device', { timeoutMs: 30 }))).toBe('ERR_TIMEOUT');
    expect(await codeOf(s.buf.beginCpuAccess('to_device', { timeoutMs: 30 }))).toBe('ERR_TIMEOUT');
    expect(await honest!.sync.addFence(s.fd, itl.createFence(6), 'read')).toEqual({ replaced: 1, appended: 0 });
    expect((await honest!.sync.pendingFences(s.fd, 'read')).length).toBe(6);
    // Signalled, the exporter's writer lets readers in once the hostile VM's write fences signal too:
    // like any importer it may be writing, so its fences count, but they can only delay, within the timeout.
    etl.signal(1);
    expect(await codeOf(s.fd.beginCpuAccess('from_device', { timeoutMs: 30 }))).toBe('ERR_TIMEOUT');
    htl.signal(12);
    htl2.signal(1);
    await s.fd.beginCpuAccess('from_device', { timeoutMs: 2000 });
    await s.fd.endCpuAccess('from_device');
    // The exporter's write still waits for the honest reader.
    expect(await codeOf(s.buf.beginCpuAccess('to_device', { timeoutMs: 30 }))).toBe('ERR_TIMEOUT');
    itl.signal(6);
    await s.buf.beginCpuAccess('to_device', { timeoutMs: 2000 });
    await s.buf.endCpuAccess('to_device');

    await hfd.put();
    await s.fd.put();
    for (const hid of [s.hid, hid2]) {
      await exp!.driver.unexport(hid);
      await exp!.driver.waitReleased(hid, 10_000);
    }
    await s.buf.put();
    // Every refused add returned its slot counts; the accepted ones went back when they signalled.
    expect(hostile!.fences.owner.stats().slotHolds).toBe(0);
  });

  it('is bounded: at most 256 unsignalled fences of one importer in one reservation object, the rest refused whole', async () => {
    const { doms: [exp, imp] } = await startSyncWorld(2);
    const s = await share(exp!, imp!);
    const tls = Array.from({ length: 2 }, (_, i) => imp!.fences.createTimeline(`many-${i}`));
    // Earliest last, so that none replaces another (a later point of a timeline would: it signals after
    // every earlier one). 252 slots per timeline page: two timelines to reference 256 pending points.
    expect(await rawAdd(imp!, exp!, s, tls[0]!, Array.from({ length: 200 }, (_, i) => 200 - i), 'read')).toEqual({ replaced: 0, appended: 200 });
    expect(await rawAdd(imp!, exp!, s, tls[1]!, Array.from({ length: 56 }, (_, i) => 56 - i), 'read')).toEqual({ replaced: 0, appended: 56 });
    expect(await codeOf(rawAdd(imp!, exp!, s, tls[1]!, [100], 'read'))).toBe('ERR_LIMIT');
    expect(exp!.sync.registry.get(s.buf)!.size()).toEqual({ entries: 256, pending: 256 });
    expect(exp!.sync.stats().server.refused).toMatchObject({ ERR_LIMIT: 1 });
    // Once some signal, there is room again (signalled entries are recycled).
    const copy = (await exp!.sync.pendingFences(s.buf, 'read')).find((p) => p.fence.seqno === 10 && p.fence.timelineName.includes('many-0'));
    tls[0]!.signal(10);
    expect(await copy!.fence.wait(10_000)).toBeGreaterThan(0); // the exporter saw the signal (its copy of point 10 signalled)
    expect(exp!.sync.registry.get(s.buf)!.size().pending).toBeLessThan(256);
    expect(await imp!.sync.addFence(s.fd, tls[1]!.createFence(100), 'read')).toEqual({ replaced: 1, appended: 0 });
    for (const tl of tls) tl.signal(tl.value + 1000);
    await s.fd.put();
    await exp!.driver.unexport(s.hid);
    await exp!.driver.waitReleased(s.hid, 10_000);
    await s.buf.put();
  });
});
