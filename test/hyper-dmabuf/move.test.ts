/**
 * In-process: dynamic sharing (SPEC.md 11.8). The exporter moves a shared
 * buffer's pages; importers are told (DMABUF_MOVE_NOTIFY), let go of the old
 * pages and map the new ones; pins and CPU access hold moves back; and the
 * races: a move during an import, while an importer dies, while another
 * holds the move, while the export is released. Every test ends with
 * nothing granted, busy or mapped, and the exporter's free pages back where
 * they started. No test waits on time: a step that must not complete is
 * checked after the event loop had every chance to run it.
 */
import { describe, expect, it } from 'vitest';
import { DMABUF_MOVE_NOTIFY } from '../../protocol/messages/dmabuf.ts';
import { DOMAIN_DIED } from '../../protocol/messages/session.ts';
import type { DmaBuf } from '../../src/dmabuf/dma-buf.ts';
import { MoveGateState } from '../../protocol/machines/move-gate.ts';
import type { SystemHeapPriv } from '../../src/dmabuf/system-heap.ts';
import { ExportMoveState, ExportState, ImportMapState, type Hid } from '../../src/hyper-dmabuf/index.ts';
import { ManualImporter } from './manual-importer.ts';
import { checkPattern, codeOf, expectClean, fillPattern, nextEvent, startWorld, type Dom } from './world.ts';

/** Lets every pending callback and I/O completion run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** A promise's state without waiting for it. */
function track<T>(p: Promise<T>): { readonly done: boolean; readonly p: Promise<T> } {
  const t = { done: false, p };
  p.then(() => { t.done = true; }, () => { t.done = true; });
  return t;
}

/** Writes the pattern through the buffer's own view, between begin and end of CPU access. */
async function write(buf: DmaBuf, seed: number): Promise<void> {
  await buf.beginCpuAccess('to_device');
  const v = await buf.vmap();
  fillPattern(v, seed);
  await buf.vunmap(v);
  await buf.endCpuAccess('to_device');
}

/** The first wrong byte through a fresh view (read between begin and end of CPU access), or -1. */
async function firstBad(buf: DmaBuf, seed: number): Promise<number> {
  await buf.beginCpuAccess('from_device');
  const v = await buf.vmap();
  const bad = checkPattern(v, seed);
  await buf.vunmap(v);
  await buf.endCpuAccess('from_device');
  return bad;
}

/** A movable buffer of `a`, filled, exported to `b`. */
async function share(a: Dom, b: Dom, pages: number, opts: { seed?: number; scattered?: boolean; access?: 'ro' | 'rw'; dirFormat?: 'multilevel' | 'linked' } = {}): Promise<{ buf: DmaBuf<SystemHeapPriv>; hid: Hid }> {
  const buf = a.driver.heap.alloc(pages * 4096, { movable: true, scattered: opts.scattered ?? false });
  await write(buf, opts.seed ?? 1);
  const hid = await a.driver.exportRemote(buf, b.domid, { access: opts.access ?? 'ro', ...(opts.dirFormat ? { dirFormat: opts.dirFormat } : {}) });
  return { buf, hid };
}

/** Unexports, waits for the release, and drops the user's reference. */
async function finish(a: Dom, buf: DmaBuf, ...hids: Hid[]): Promise<void> {
  for (const hid of hids) {
    await a.driver.unexport(hid);
    await a.driver.waitReleased(hid, 10_000);
  }
  await buf.put();
}

describe('moving a shared buffer', () => {
  it('keeps the data, detaches the importer\'s view, maps lazily, and frees the old pages only after the answer', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [Dom, Dom];
    const free0 = a.kernel.allocator.freePages;
    const { buf, hid } = await share(a, b, 100, { seed: 7, scattered: true });
    const fd = await b.driver.exportFd(hid);
    const view = await fd.vmap();
    expect(checkPattern(view, 7)).toBe(-1);
    const freeShared = a.kernel.allocator.freePages;
    const old = buf.priv.frames.slice();
    const oldDirFrames = a.driver.exporter.find(hid)!.directory.frames.slice();

    const r = await a.driver.move(hid);
    expect(r).toMatchObject({ generation: 1, pages: 100, notified: 1, notifyErrors: 0 });
    // The importer let go: its view is detached, nothing of it is mapped until it needs the pages.
    expect(view.byteLength).toBe(0);
    expect(fd.generation).toBe(1);
    expect(b.driver.query(hid)).toMatchObject({ generation: 1, moveState: ImportMapState.Invalidated, state: 'mapped' });
    expect(a.driver.query(hid)).toMatchObject({ generation: 1, moveState: ExportMoveState.Stable });
    expect(b.kernel.stats().mapper.liveMappings).toBe(0);
    // The old data and directory pages are scrubbed and free; as many new ones are in use.
    for (const f of [...old, ...oldDirFrames]) {
      expect(a.kernel.allocator.isAllocated(f)).toBe(false);
      expect(a.kernel.ram.page(f).every((x) => x === 0)).toBe(true);
    }
    expect(a.kernel.allocator.freePages).toBe(freeShared);
    expect(w.hv.stats().domains.find((d) => d.domid === a.domid)).toMatchObject({ grantsInUse: 102, busyGrants: 0 });

    // The next view maps the new pages (lazy remap) and shows the same bytes, still with no copy.
    const again = await fd.vmap();
    expect(checkPattern(again, 7)).toBe(-1);
    expect(b.driver.query(hid).moveState).toBe(ImportMapState.Mapped);
    await write(buf, 8);
    expect(checkPattern(again, 8)).toBe(-1);
    expect(b.driver.stats().importer.move).toMatchObject({ movesReceived: 1, invalidations: 1, lazyRemaps: 1, eagerRemaps: 0 });
    expect(a.driver.stats().exporter.move).toMatchObject({ exportMoves: 1, moveAcks: 1, moveRemapped: 0 });
    // Both holds go with the views they returned, stale or not.
    await fd.vunmap(view);
    await fd.vunmap(again);
    await fd.put();
    await finish(a, buf, hid);
    expectClean(w);
    expect(a.kernel.allocator.freePages).toBe(free0);
  });

  it('100 moves through both directory formats, read-write, eager remap: every write on either side survives', async () => {
    const w = await startWorld(2, [{}, { driver: { remapOnMove: 'eager' } }]);
    const [a, b] = w.doms as [Dom, Dom];
    const free0 = a.kernel.allocator.freePages;
    for (const dirFormat of ['multilevel', 'linked'] as const) {
      const { buf, hid } = await share(a, b, 40, { scattered: true, access: 'rw', dirFormat });
      const fd = await b.driver.exportFd(hid);
      for (let i = 1; i <= 50; i++) {
        await write(fd, i);
        const r = await a.driver.move(buf);
        expect(r.generation).toBe(i);
        // Eager: the importer mapped the new pages before it answered.
        expect(b.driver.query(hid)).toMatchObject({ generation: i, moveState: ImportMapState.Mapped });
        expect(await firstBad(buf, i)).toBe(-1);
        await write(buf, 1000 + i);
        expect(await firstBad(fd, 1000 + i)).toBe(-1);
      }
      expect(a.driver.stats().exporter.move.moveRemapped).toBe(dirFormat === 'multilevel' ? 50 : 100);
      expect(b.driver.stats().importer.move.lazyRemaps).toBe(0);
      await fd.put();
      await finish(a, buf, hid);
    }
    expectClean(w);
    expect(a.kernel.allocator.freePages).toBe(free0);
  });

  it('an import with no fd learns the new directory; its first fd maps the new pages', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [Dom, Dom];
    const { buf, hid } = await share(a, b, 20, { seed: 3 });
    await a.driver.move(buf);
    await a.driver.move(buf);
    expect(b.driver.query(hid)).toMatchObject({ generation: 2, moveState: ImportMapState.Unmapped, state: 'registered' });
    const fd = await b.driver.exportFd(hid);
    expect(fd.generation).toBe(2);
    expect(await firstBad(fd, 3)).toBe(-1);
    await fd.put();
    await finish(a, buf, hid);
    expectClean(w);
  });

  it('tells every importer of the buffer, each with its own grants and directory', async () => {
    const w = await startWorld(3, [{}, {}, { driver: { remapOnMove: 'eager' } }]);
    const [a, b, c] = w.doms as [Dom, Dom, Dom];
    const { buf, hid } = await share(a, b, 30, { seed: 4 });
    const toC = await a.driver.exportRemote(buf, c.domid);
    const fdB = await b.driver.exportFd(hid);
    const fdC = await c.driver.exportFd(toC);
    expect(await firstBad(fdC, 4)).toBe(-1);
    const r = await a.driver.move(buf);
    expect(r.notified).toBe(2);
    expect(b.driver.query(hid).moveState).toBe(ImportMapState.Invalidated);
    expect(c.driver.query(toC).moveState).toBe(ImportMapState.Mapped);
    expect(await firstBad(fdB, 4)).toBe(-1);
    expect(await firstBad(fdC, 4)).toBe(-1);
    await fdB.put();
    await fdC.put();
    await finish(a, buf, hid, toC);
    expectClean(w);
  });
});

describe('pins and CPU access', () => {
  it('an importer\'s pin blocks moves until unpin; ERR_PINNED when asked not to wait; a release undoes the pin', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [Dom, Dom];
    const { buf, hid } = await share(a, b, 16, { seed: 5 });
    const fd = await b.driver.exportFd(hid);
    const view = await fd.vmap();
    await fd.pin();
    expect(buf.use().pins).toBe(1);
    expect(await codeOf(a.driver.move(hid, { wait: false }))).toBe('ERR_PINNED');
    const move = track(a.driver.move(hid));
    await settle();
    expect(move.done).toBe(false);
    expect(buf.gate.state).toBe(MoveGateState.MoveWaiting);
    // Pinned: the importer's view stays valid, and CPU access is not held back by the waiting move.
    await fd.beginCpuAccess('from_device');
    expect(checkPattern(view, 5)).toBe(-1);
    await fd.endCpuAccess('from_device');
    await fd.unpin();
    expect(await move.p).toMatchObject({ generation: 1, waitedFor: ['pinned'] });
    expect(view.byteLength).toBe(0);

    // A pin left behind at release is undone (locally and by the exporter), so a waiting move goes on.
    await fd.pin();
    const second = track(a.driver.move(hid));
    await settle();
    expect(second.done).toBe(false);
    await fd.vunmap(view);
    await fd.put();
    expect(fd.leftovers).toBe(1);
    expect(await second.p).toMatchObject({ generation: 2 });
    expect(buf.use().pins).toBe(0);
    await finish(a, buf, hid);
    expectClean(w);
  });

  it('an importer\'s mapped device pins the buffer (its table names frames); a CPU access holds a move until it ends', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [Dom, Dom];
    const { buf, hid } = await share(a, b, 8);
    const fd = await b.driver.exportFd(hid);
    const att = await fd.attach('display');
    const sgt = await fd.map(att);
    expect(await codeOf(a.driver.move(hid, { wait: false }))).toBe('ERR_PINNED');
    await fd.unmap(att, sgt);
    await fd.detach(att);

    await fd.beginCpuAccess('from_device');
    expect(await codeOf(a.driver.move(hid, { wait: false }))).toBe('ERR_BUSY');
    const move = track(a.driver.move(hid));
    await settle();
    expect(move.done).toBe(false);
    await fd.endCpuAccess('from_device');
    expect(await move.p).toMatchObject({ generation: 1, waitedFor: ['cpu-access'] });
    await fd.put();
    await finish(a, buf, hid);
    expectClean(w);
  });

  it('a CPU access or pin asked for during a move is answered only after every importer acknowledged', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [Dom, Dom];
    const manual = new ManualImporter(await w.addBare());
    const { buf, hid } = await share(a, b, 8, { seed: 6 });
    const toM = await a.driver.exportRemote(buf, manual.dom.domid);
    const fd = await b.driver.exportFd(hid);
    const move = track(a.driver.move(buf));
    const held = await manual.nextMove();
    expect(held.body).toMatchObject({ generation: 1, nents: 8 });
    expect(buf.gate.state).toBe(MoveGateState.Moving);
    expect(a.driver.query(toM).moveState).toBe(ExportMoveState.Moving);
    // b already let go of the old pages; its begin and pin wait at the exporter for the move.
    const access = track(fd.beginCpuAccess('from_device'));
    const pin = track(fd.pin());
    await settle();
    expect(b.driver.query(hid).generation).toBe(1);
    expect({ access: access.done, pin: pin.done, move: move.done }).toEqual({ access: false, pin: false, move: false });
    held.answer();
    await access.p;
    await pin.p;
    await move.p;
    const v = await fd.vmap();
    expect(checkPattern(v, 6)).toBe(-1);
    await fd.vunmap(v);
    await fd.endCpuAccess('from_device');
    await fd.unpin();
    await fd.put();
    await finish(a, buf, hid, toM);
    expectClean(w);
  });
});

describe('races', () => {
  it('a move during an import, at every step of it: the fd always ends up on the new pages, nothing stale left mapped', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [Dom, Dom];
    const free0 = a.kernel.allocator.freePages;
    const { buf, hid } = await share(a, b, 24, { seed: 9, scattered: true });
    for (let k = 0; k < 16; k++) {
      const opening = b.driver.exportFd(hid);
      for (let i = 0; i < k; i++) await new Promise<void>((resolve) => setImmediate(resolve));
      const moved = a.driver.move(buf);
      const [fd] = await Promise.all([opening, moved]);
      expect(fd.generation).toBe(b.driver.query(hid).generation);
      expect(await firstBad(fd, 9)).toBe(-1);
      expect(b.kernel.stats().mapper.liveMappings).toBe(1);
      await fd.put();
      expect(b.kernel.stats().mapper.liveMappings).toBe(0);
    }
    expect(buf.generation).toBe(16);
    await finish(a, buf, hid);
    expectClean(w);
    expect(a.kernel.allocator.freePages).toBe(free0);
  });

  it('an fd opened in the same turn as a MOVE_NOTIFY arrives, before the move is handled: it gets the new pages', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [Dom, Dom];
    const { buf, hid } = await share(a, b, 6, { seed: 6 });
    const first = await b.driver.exportFd(hid);
    expect(await firstBad(first, 6)).toBe(-1);
    // As if another frame of the same read had resolved a wait whose continuation opens an fd: it runs
    // after the MOVE_NOTIFY frame was dispatched, ahead of everything the handler queued.
    let second: Promise<DmaBuf> | undefined;
    b.kernel.hv.conn.on('frame', (env: { type: string }) => {
      if (env.type === DMABUF_MOVE_NOTIFY.type && !second) queueMicrotask(() => { second = b.driver.exportFd(hid); });
    });
    await a.driver.move(buf);
    const fd = await second!;
    expect(fd.generation).toBe(1);
    expect(await firstBad(fd, 6)).toBe(-1);
    expect(b.kernel.stats().mapper.liveMappings).toBe(1);
    await fd.put();
    await first.put();
    await finish(a, buf, hid);
    expectClean(w);
  });

  it('an importer dies while the exporter waits for its answer: the move completes and nothing leaks', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [Dom, Dom];
    const manual = new ManualImporter(await w.addBare());
    const free0 = a.kernel.allocator.freePages;
    const { buf, hid } = await share(a, b, 12, { seed: 2 });
    const toM = await a.driver.exportRemote(buf, manual.dom.domid);
    // The dying importer maps the old pages, so its grants are busy when the move wants to end them.
    await manual.map(toM);
    const old = buf.priv.frames.slice();
    const released = a.driver.waitReleased(toM, 10_000);
    const move = track(a.driver.move(buf));
    await manual.nextMove();
    expect(old.every((f) => a.kernel.allocator.isAllocated(f))).toBe(true);
    await w.hv.destroyDomain(manual.dom.domid);
    expect(await move.p).toMatchObject({ generation: 1, notified: 2 });
    expect(a.driver.stats().exporter.move.moveUnanswered).toBe(1);
    expect(old.some((f) => a.kernel.allocator.isAllocated(f))).toBe(false);
    await released;
    const fd = await b.driver.exportFd(hid);
    expect(await firstBad(fd, 2)).toBe(-1);
    await fd.put();
    await finish(a, buf, hid);
    expectClean(w);
    expect(a.kernel.allocator.freePages).toBe(free0);
  });

  it('an importer that answers but keeps the old pages mapped: they stay allocated, granted and intact until it unmaps', async () => {
    const w = await startWorld(1);
    const [a] = w.doms as [Dom];
    const liar = new ManualImporter(await w.addBare());
    const mine = a.driver.heap.alloc(10 * 4096, { movable: true });
    await write(mine, 11);
    const hid = await a.driver.exportRemote(mine, liar.dom.domid);
    const oldMap = await liar.map(hid);
    const old = mine.priv.frames.slice();
    const move = track(a.driver.move(mine));
    (await liar.nextMove()).answer();
    // The buffer is usable again at once (the move no longer holds it)...
    await mine.beginCpuAccess('from_device');
    await mine.endCpuAccess('from_device');
    expect(mine.gate.state).toBe(MoveGateState.Idle);
    // ...but the old pages are not freed under the mapping: their grants end only when it goes.
    await settle();
    expect(move.done).toBe(false);
    expect(old.every((f) => a.kernel.allocator.isAllocated(f))).toBe(true);
    expect(a.kernel.stats().grants.deferred).toBe(10);
    expect(checkPattern(new Uint8Array(oldMap.view), 11)).toBe(-1);
    await oldMap.unmap();
    a.kernel.grants.retryDeferred();
    expect(await move.p).toMatchObject({ generation: 1 });
    expect(old.some((f) => a.kernel.allocator.isAllocated(f))).toBe(false);
    await finish(a, mine, hid);
    expectClean(w);
  });

  it('the exporter dies after a move, before the importer mapped the new pages: accesses fail with ERR_UNEXPORTED, the release is clean', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [Dom, Dom];
    const { buf, hid } = await share(a, b, 6, { seed: 5 });
    const fd = await b.driver.exportFd(hid);
    expect(await firstBad(fd, 5)).toBe(-1);
    await a.driver.move(buf);
    expect(b.driver.query(hid).moveState).toBe(ImportMapState.Invalidated);
    const died = nextEvent(b.kernel.hv, DOMAIN_DIED);
    await w.hv.destroyDomain(a.domid);
    await died;
    expect(b.driver.query(hid)).toMatchObject({ state: 'invalid', moveState: ImportMapState.Invalidated });
    expect(await codeOf(fd.vmap())).toBe('ERR_UNEXPORTED');
    await fd.put();
    expect(b.driver.importer.find(hid)).toBeUndefined();
    expect(w.hv.stats().domains.some((d) => d.domid === a.domid)).toBe(false);
    expectClean(w);
  });

  it('a release and an unexport while another importer holds the move: both exports end cleanly', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [Dom, Dom];
    const manual = new ManualImporter(await w.addBare());
    const free0 = a.kernel.allocator.freePages;
    const { buf, hid } = await share(a, b, 12, { seed: 3 });
    const toM = await a.driver.exportRemote(buf, manual.dom.domid);
    const fd = await b.driver.exportFd(hid);
    const move = track(a.driver.move(buf));
    const held = await manual.nextMove();
    // b's export is released and unexported in the middle of the move.
    await fd.put();
    await a.driver.unexport(hid);
    await a.driver.waitReleased(hid, 10_000);
    expect(move.done).toBe(false);
    held.answer();
    await move.p;
    await finish(a, buf, toM);
    expectClean(w);
    expect(a.kernel.allocator.freePages).toBe(free0);
  });

  it('the export starts revoking after its new location was prepared, before it was announced: the new grants end at once', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [Dom, Dom];
    const free0 = a.kernel.allocator.freePages;
    const { buf, hid } = await share(a, b, 8, { seed: 4 });
    const fd = await b.driver.exportFd(hid);
    // An acknowledged operation: the exporter has counted the fd once it is answered.
    await fd.pin();
    await fd.unpin();
    // Unexported: the export waits for b's fd, and is still one that a move must prepare.
    await a.driver.unexport(hid);
    expect(a.driver.query(hid).state).toBe(ExportState.WaitingRelease);
    // A local device attached after the export: its prepareMove holds the move between the
    // export's prepare and the notifications, for as long as the test says.
    let holdOn!: () => void;
    const held = new Promise<void>((resolve) => { holdOn = resolve; });
    let reached!: () => void;
    const atPrepare = new Promise<void>((resolve) => { reached = resolve; });
    const device = await buf.attach('test-device', { prepareMove: async () => { reached(); await held; }, moveNotify: () => undefined });
    const move = track(a.driver.move(buf));
    await atPrepare;
    expect(a.driver.query(hid).moveState).toBe(ExportMoveState.Moving);
    // b lets go of its last fd: the export is freed (its old grants ended) before the move announces anything.
    await fd.put();
    await a.driver.waitReleased(hid, 10_000);
    expect(move.done).toBe(false);
    holdOn();
    expect(await move.p).toMatchObject({ generation: 1, notifyErrors: 0 });
    // The new location's grants and directory ended with it: nothing of the export is left granted.
    expect(a.kernel.stats().grants).toMatchObject({ granted: 0, deferred: 0 });
    await buf.detach(device);
    await buf.put();
    expectClean(w);
    expect(a.kernel.allocator.freePages).toBe(free0);
  });

  it('no room for the new grants: the move fails with ERR_LIMIT and the buffer, the importer and the grants are as before', async () => {
    // One grant frame: 511 refs. 300 pages + 2 directory pages fit once, not twice.
    const w = await startWorld(2, [{ maxGrantFrames: 1 }, {}]);
    const [a, b] = w.doms as [Dom, Dom];
    const { buf, hid } = await share(a, b, 300, { seed: 12 });
    const fd = await b.driver.exportFd(hid);
    const view = await fd.vmap();
    const frames = buf.priv.frames.slice();
    const free = a.kernel.allocator.freePages;
    expect(await codeOf(a.driver.move(buf))).toBe('ERR_LIMIT');
    expect(Array.from(buf.priv.frames)).toEqual(Array.from(frames));
    expect({ generation: buf.generation, free: a.kernel.allocator.freePages, granted: a.kernel.stats().grants.granted })
      .toEqual({ generation: 0, free, granted: 302 });
    expect(view.byteLength).toBe(300 * 4096);
    expect(checkPattern(view, 12)).toBe(-1);
    expect(a.driver.stats().exporter.move.moveAborts).toBe(0);
    await fd.vunmap(view);
    await fd.put();
    await finish(a, buf, hid);
    expectClean(w);
  });
});

describe('a MOVE_NOTIFY the importer refuses', () => {
  it('from another domain, for an unknown buffer, with an old generation or another geometry', async () => {
    const w = await startWorld(3);
    const [a, b, c] = w.doms as [Dom, Dom, Dom];
    const { buf, hid } = await share(a, b, 4);
    await a.driver.move(buf);
    const good = { hid, generation: 2, nents: 4, firstOffset: 0, lastLength: 4096, dirRef: 9, dirFormat: 'multilevel' as const };
    expect(await codeOf(c.kernel.hv.peerRequest(DMABUF_MOVE_NOTIFY, b.domid, good))).toBe('ERR_ID_DOMAIN_MISMATCH');
    expect(await codeOf(a.kernel.hv.peerRequest(DMABUF_MOVE_NOTIFY, b.domid, { ...good, hid: { ...hid, cnt: hid.cnt + 1 } }))).toBe('ERR_UNKNOWN_BUFFER');
    expect(await codeOf(a.kernel.hv.peerRequest(DMABUF_MOVE_NOTIFY, b.domid, { ...good, generation: 1 }))).toBe('ERR_BAD_ARGUMENT');
    expect(await codeOf(a.kernel.hv.peerRequest(DMABUF_MOVE_NOTIFY, b.domid, { ...good, nents: 5 }))).toBe('ERR_BAD_ARGUMENT');
    expect(await codeOf(a.kernel.hv.peerRequest(DMABUF_MOVE_NOTIFY, b.domid, { ...good, lastLength: 100 }))).toBe('ERR_BAD_ARGUMENT');
    // The import is untouched by all of them.
    expect(b.driver.query(hid)).toMatchObject({ generation: 1 });
    expect(b.driver.stats().importer.move).toMatchObject({ movesReceived: 1, movesRefused: 5 });
    await finish(a, buf, hid);
    expectClean(w);
  });
});

describe('a MOVE_NOTIFY to a location the importer cannot map', () => {
  it('the next access fails with ERR_MAP_FAILED and the import stays invalidated; the release is clean', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [Dom, Dom];
    const { buf, hid } = await share(a, b, 4, { seed: 3 });
    const fd = await b.driver.exportFd(hid);
    expect(await firstBad(fd, 3)).toBe(-1);
    // The exporter's domain announces a directory it never granted (a broken or lying exporter): a valid
    // message, so the importer lets go of the old pages, and the new ones cannot be mapped.
    await a.kernel.hv.peerRequest(DMABUF_MOVE_NOTIFY, b.domid, { hid, generation: 1, nents: 4, firstOffset: 0, lastLength: 4096, dirRef: 2000, dirFormat: 'multilevel' });
    expect(b.driver.query(hid).moveState).toBe(ImportMapState.Invalidated);
    expect(await codeOf(fd.vmap())).toBe('ERR_MAP_FAILED');
    // The import machine's remap-failed: still invalidated, the next access tries again (and fails again).
    expect(b.driver.query(hid).moveState).toBe(ImportMapState.Invalidated);
    expect(await codeOf(fd.vmap())).toBe('ERR_MAP_FAILED');
    expect(b.kernel.stats().mapper.liveMappings).toBe(0);
    await fd.put();
    await finish(a, buf, hid);
    expectClean(w);
  });
});
