/**
 * The sync_file bridge on shared buffers, in process, after IGT's
 * dmabuf_sync_file: a sync_file exported from a buffer (READ waits for the
 * writers, WRITE for every user, a snapshot, the signalled stub when idle)
 * on either side of the share, imported into the buffer from either side
 * (READ adds a read fence, WRITE a write fence, each leaf on its own, never
 * removing anything), sent to another VM, merged, and its file info with
 * per-fence statuses.
 */
import { describe, expect, it } from 'vitest';
import type { DmaBuf } from '../../src/dmabuf/dma-buf.ts';
import { DmaResvUsage } from '../../src/fence/dma-resv.ts';
import { EINVAL, EIO } from '../../src/fence/errno.ts';
import { DmaFenceArray } from '../../src/fence/fence-array.ts';
import { allocateFenceContexts } from '../../src/fence/fence-context.ts';
import { isStubFence } from '../../src/fence/stub.ts';
import { SwSyncTimeline } from '../../src/fence/sw-sync.ts';
import { POLLIN, POLLOUT, SyncFile, syncFileMerge } from '../../src/fence/sync-file.ts';
import { AggregateFence } from '../../src/hyper-dmabuf/sync/aggregate-fence.ts';
import { unwrapFences } from '../../src/fence/unwrap.ts';
import type { DmaFence } from '../../src/fence/dma-fence.ts';
import { untilBufBusy } from '../../vm-sim/process/commands/wait-commands.ts';
import { codeOf, share, startSyncWorld, unshare, type SyncDom } from './world.ts';

/** The leaf fence of a sync_file whose timeline name contains `name`. */
function leafNamed(file: SyncFile, name: string): DmaFence {
  const leaf = [...unwrapFences(file.fence)].find((f) => f.timelineName.includes(name));
  if (!leaf) throw new Error(`no fence of timeline ${name} in ${file.name}`);
  return leaf;
}

type Access = 'read' | 'write' | 'rw';
const ACCESSES: Access[] = ['read', 'write', 'rw'];

/** IGT's dmabuf_busy and dmabuf_sync_file_busy, for each access, on `buf` as `dom` sees it. */
async function busy(dom: SyncDom, buf: DmaBuf): Promise<Record<Access, { poll: boolean; export: boolean }>> {
  const out = {} as Record<Access, { poll: boolean; export: boolean }>;
  for (const a of ACCESSES) {
    const poll = (await dom.sync.poll(buf, a === 'read' ? POLLIN : POLLOUT)) === 0;
    const exp = ((await dom.sync.exportSyncFile(buf, a)).poll() & POLLIN) === 0;
    out[a] = { poll, export: exp };
  }
  return out;
}

/**
 * Both ways of asking agree with `want` for each access given: at once after an add, or once a pending fence's
 * signal reached `dom` (untilBufBusy looks again on each signal; ERR_TIMEOUT after 10 s only fails).
 */
async function busyBecomes(dom: SyncDom, buf: DmaBuf, want: Partial<Record<Access, boolean>>): Promise<void> {
  const b = await untilBufBusy(dom.sync, buf, want, 10_000);
  expect(Object.entries(want).every(([k, v]) => b[k as Access].poll === v && b[k as Access].export === v), JSON.stringify(b)).toBe(true);
  expect(await busy(dom, buf)).toEqual(b);
}

/** The file's fence signalled (its own event, not a re-check): then poll() says POLLIN. */
async function expectSignals(file: SyncFile): Promise<void> {
  expect(await file.fence.wait(10_000), `${file.name} signalled`).toBeGreaterThan(0);
  expect(file.poll()).toBe(POLLIN);
}

/** The errno an ioctl-shaped call fails with. */
async function errnoOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (e) {
    return (e as { errno: number }).errno;
  }
  throw new Error('expected a rejection');
}

const ALL = (v: boolean): Record<Access, boolean> => ({ read: v, write: v, rw: v });

describe('sync_file export from a shared buffer (either side)', () => {
  it('export-basic: idle, then a read fence busies WRITE only, a write fence everything; both sides agree', async () => {
    const { doms: [exp, imp] } = await startSyncWorld(2);
    const s = await share(exp!, imp!);
    const idle = await imp!.sync.exportSyncFile(s.fd, 'write');
    expect(isStubFence(idle.fence)).toBe(true);
    expect(idle.getInfo({ numFences: 1 })).toMatchObject({ status: 1, numFences: 1 });
    const tl = exp!.fences.createTimeline('vgem');
    await exp!.sync.addFence(s.buf, tl.createFence(1), 'read');
    for (const [dom, buf] of [[exp!, s.buf], [imp!, s.fd]] as const) await busyBecomes(dom, buf, { read: false, write: true, rw: true });
    tl.signal(1);
    for (const [dom, buf] of [[exp!, s.buf], [imp!, s.fd]] as const) await busyBecomes(dom, buf, ALL(false));
    await exp!.sync.addFence(s.buf, tl.createFence(2), 'write');
    for (const [dom, buf] of [[exp!, s.buf], [imp!, s.fd]] as const) await busyBecomes(dom, buf, ALL(true));
    tl.signal(2);
    for (const [dom, buf] of [[exp!, s.buf], [imp!, s.fd]] as const) await busyBecomes(dom, buf, ALL(false));
    expect(await errnoOf(imp!.sync.exportSyncFile(s.fd, 4))).toBe(EINVAL);
    expect(await errnoOf(imp!.sync.exportSyncFile(s.fd, 8))).toBe(EINVAL);
    await unshare(exp!, s);
  });

  it('export-multiwait: an importer\'s WRITE export is a snapshot (idle after f1 and f2, though f3 came later and pends)', async () => {
    const { doms: [exp, imp] } = await startSyncWorld(2);
    const s = await share(exp!, imp!);
    const [t1, t2, t3] = ['f1', 'f2', 'f3'].map((n) => exp!.fences.createTimeline(n)) as [ReturnType<SyncDom['fences']['createTimeline']>, ReturnType<SyncDom['fences']['createTimeline']>, ReturnType<SyncDom['fences']['createTimeline']>];
    await exp!.sync.addFence(s.buf, t1.createFence(1), 'read');
    await exp!.sync.addFence(s.buf, t2.createFence(1), 'read');
    const file = await imp!.sync.exportSyncFile(s.fd, 'write');
    expect(file.getInfo().numFences).toBe(2);
    await exp!.sync.addFence(s.buf, t3.createFence(1), 'read');
    t1.signal(1);
    // The importer's copy of f1 signalled (the event), and yet the file, which also holds f2, is not ready.
    await leafNamed(file, 'f1').wait(5000);
    expect(file.poll()).toBe(0);
    t2.signal(1);
    await expectSignals(file);
    await busyBecomes(imp!, s.fd, { read: false, write: true });
    t3.signal(1);
    await busyBecomes(imp!, s.fd, ALL(false));
    await unshare(exp!, s);
  });

  it('a file exported from the buffer travels to a third VM; merged there with a local fence; file info per fence, errors included', async () => {
    const { doms: [exp, imp, display] } = await startSyncWorld(3);
    const s = await share(exp!, imp!);
    const etl = exp!.fences.createTimeline('render');
    const itl = imp!.fences.createTimeline('blit');
    await exp!.sync.addFence(s.buf, etl.createFence(1), 'write');
    await imp!.sync.addFence(s.fd, itl.createFence(1), 'read');
    // The importer exports what a writer must wait for (both fences) and sends it on.
    const file = await imp!.sync.exportSyncFile(s.fd, 'write');
    expect(file.getInfo({ numFences: 2 }).fences.map((f) => f.status)).toEqual([0, 0]);
    await imp!.fences.exportFence(display!.domid, file, { cookie: 7, name: 'buffer-idle' });
    const got = await display!.fences.takeImport(imp!.domid, 7, 2000);
    const local = new SwSyncTimeline('scanout');
    const merged = syncFileMerge('merged', got, SyncFile.create(local.createPoint(1)));
    expect(merged.getInfo()).toMatchObject({ name: 'merged', numFences: 3, status: 0 });
    exp!.fences.owner.get(etl.id)!.signal(1, EIO);
    expect(await leafNamed(merged, 'render').wait(10_000)).toBeGreaterThan(0); // the exporter's error reached the display VM
    const info = merged.getInfo({ numFences: 3 });
    expect(info.fences.map((f) => f.status).sort()).toEqual([EIO, 0, 0].sort());
    expect(info.status).toBeLessThanOrEqual(0);
    itl.signal(1);
    local.inc(1);
    await merged.wait(2000);
    expect(merged.getInfo({ numFences: 3 }).status).toBe(EIO);
    local.close();
    await unshare(exp!, s);
  });

  it('more than 256 pending fences: the importer gets one collapsed fence that signals when all have', async () => {
    const { doms: [exp, imp] } = await startSyncWorld(2);
    const s = await share(exp!, imp!);
    const sw = Array.from({ length: 300 }, (_, i) => new SwSyncTimeline(`engine${i}`));
    for (const t of sw) await exp!.sync.addFence(s.buf, t.createPoint(1), 'write');
    const file = await imp!.sync.exportSyncFile(s.fd, 'read');
    expect(file.getInfo().numFences).toBe(1);
    expect(exp!.sync.stats().server.collapsed).toBe(1);
    for (const t of sw.slice(0, 299)) t.inc(1);
    // Nothing to wait for: the collapsed fence signals only with the last one (checked right after it, below).
    expect(file.poll()).toBe(0);
    sw[299]!.inc(1);
    await expectSignals(file);
    for (const t of sw) t.close();
    const agg = new AggregateFence([]);
    expect(agg.isSignaled()).toBe(true);
    await exp!.fences.releaseIdleBridges();
    await unshare(exp!, s);
  });
});

describe('sync_file import into a shared buffer (either side)', () => {
  it('import-basic from the importer: READ busies writers only, WRITE and RW everyone, until the importer signals', async () => {
    const { doms: [exp, imp] } = await startSyncWorld(2);
    const s = await share(exp!, imp!);
    const sw = new SwSyncTimeline('importer-sw');
    await imp!.sync.importSyncFile(s.fd, SyncFile.create(sw.createPoint(1)), 'read');
    for (const [dom, buf] of [[exp!, s.buf], [imp!, s.fd]] as const) await busyBecomes(dom, buf, { read: false, write: true, rw: true });
    sw.inc(1);
    for (const [dom, buf] of [[exp!, s.buf], [imp!, s.fd]] as const) await busyBecomes(dom, buf, ALL(false));
    await imp!.sync.importSyncFile(s.fd, SyncFile.create(sw.createPoint(2)), 'write');
    await busyBecomes(exp!, s.buf, ALL(true));
    sw.inc(1);
    await busyBecomes(exp!, s.buf, ALL(false));
    await imp!.sync.importSyncFile(s.fd, SyncFile.create(sw.createPoint(3)), 'rw');
    await busyBecomes(imp!, s.fd, ALL(true));
    sw.inc(1);
    await busyBecomes(imp!, s.fd, ALL(false));
    expect(await errnoOf(imp!.sync.importSyncFile(s.fd, {}, 'read'))).toBe(EINVAL);
    expect(await errnoOf(imp!.sync.importSyncFile(s.fd, SyncFile.create(sw.createPoint(4)), 0))).toBe(EINVAL);
    sw.close();
    await exp!.fences.releaseIdleBridges();
    await imp!.fences.releaseIdleBridges();
    await unshare(exp!, s);
  });

  it('import-multiple-read-only across VMs: 32 imported read fences accumulate; WRITE stays busy until the last signals', async () => {
    const { doms: [exp, imp] } = await startSyncWorld(2);
    const s = await share(exp!, imp!);
    const tls = Array.from({ length: 32 }, (_, i) => imp!.fences.createTimeline(`reader${i}`));
    for (const tl of tls) await imp!.sync.importSyncFile(s.fd, SyncFile.create(tl.createFence(1)), 'read');
    expect(exp!.sync.registry.get(s.buf)!.size()).toEqual({ entries: 32, pending: 32 });
    const readFile = await exp!.sync.exportSyncFile(s.buf, 'read');
    const writeFile = await imp!.sync.exportSyncFile(s.fd, 'write');
    expect(writeFile.getInfo().numFences).toBe(32);
    for (const tl of [...tls].reverse()) {
      expect(readFile.poll()).toBe(POLLIN);
      await busyBecomes(imp!, s.fd, { read: false, write: true });
      tl.signal(1);
    }
    await expectSignals(writeFile);
    await busyBecomes(imp!, s.fd, ALL(false));
    await unshare(exp!, s);
  });

  it('adds each leaf of a container on its own, never the container, and removes nothing', async () => {
    const { doms: [exp, imp] } = await startSyncWorld(2);
    const s = await share(exp!, imp!);
    const etl = exp!.fences.createTimeline('own');
    await exp!.sync.addFence(s.buf, etl.createFence(1), 'write');
    const tls = [1, 2, 3].map((i) => imp!.fences.createTimeline(`leaf${i}`));
    const array = new DmaFenceArray(tls.map((t) => t.createFence(1)), allocateFenceContexts(1), 1, false);
    expect(await imp!.sync.importSyncFile(s.fd, SyncFile.create(array), 'write')).toEqual({ replaced: 0, appended: 3 });
    // Locally too: a container is refused by addFence, unwrapped by importSyncFile.
    expect(await codeOf(exp!.sync.addFence(s.buf, array, 'read'))).toBe('ERR_BAD_ARGUMENT');
    const sw = new SwSyncTimeline('local');
    const sw2 = new SwSyncTimeline('local-2');
    const local = new DmaFenceArray([sw.createPoint(1), sw2.createPoint(1)], allocateFenceContexts(1), 1, false);
    expect(await exp!.sync.importSyncFile(s.buf, SyncFile.create(local), 'read')).toEqual({ replaced: 0, appended: 2 });
    const stored = [...exp!.sync.registry.get(s.buf)!.resv.fences(DmaResvUsage.BOOKKEEP)];
    expect(stored.map((e) => e.fence.ops.container === true)).toEqual([false, false, false, false, false, false]);
    expect(stored.length).toBe(6);
    etl.signal(1);
    for (const t of tls) t.signal(1);
    sw.inc(1);
    sw2.inc(1);
    await busyBecomes(exp!, s.buf, ALL(false));
    sw.close();
    sw2.close();
    await unshare(exp!, s);
  });
});
