/**
 * In-process: the exporter's and importer's state machines in the normal
 * flow: re-export (same id, private data on both sides, cancelled unexport),
 * several importers, delayed unexport, unexport while mapped, refusal of new
 * fds, owner-only unexport, and scrubbing at the final release.
 */
import { describe, expect, it } from 'vitest';
import { DMABUF_EXPORT_FD } from '../../protocol/messages/dmabuf.ts';
import { ExportState, BufferImportState, sameHid } from '../../src/hyper-dmabuf/index.ts';
import { checkPattern, codeOf, expectClean, fillPattern, startWorld } from './world.ts';

describe('export lifecycle', () => {
  it('re-exporting the same buffer to the same domain keeps the id, updates private data on both sides and cancels a pending unexport', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [typeof w.doms[0], typeof w.doms[0]];
    const buf = a.driver.heap.alloc(4096 * 3);
    const hid = await a.driver.exportRemote(buf, b.domid, { priv: Uint8Array.from([1]) });
    expect(b.driver.tryReadEvent()?.update).toBe(false);
    const pending = a.driver.unexport(hid, { delayMs: 3_600_000 });
    expect(a.driver.query(hid)).toMatchObject({ delayedUnexported: true, unexported: false, state: ExportState.UnexportScheduled });
    // Still importable while the delay runs.
    const fd = await b.driver.exportFd(hid);
    const again = await a.driver.exportRemote(buf, b.domid, { priv: Uint8Array.from([7, 7]) });
    expect(sameHid(again, hid)).toBe(true);
    expect(await pending).toBe('cancelled');
    expect(a.driver.query(hid)).toMatchObject({ delayedUnexported: false, unexported: false, privSize: 2, state: ExportState.Exported });
    expect(Array.from(b.driver.query(hid).priv)).toEqual([7, 7]);
    const ev = b.driver.tryReadEvent();
    expect(ev).toMatchObject({ update: true });
    expect(Array.from(ev!.priv)).toEqual([7, 7]);
    expect(a.driver.stats().exporter).toMatchObject({ exported: 1, reexported: 1, cancelledUnexports: 1 });
    await fd.put();
    await a.driver.unexport(hid);
    await a.driver.waitReleased(hid);
    await buf.put();
    expectClean(w);
  });

  it('exports one buffer to several domains under one id each', async () => {
    const w = await startWorld(3);
    const [a, b, c] = w.doms as [typeof w.doms[0], typeof w.doms[0], typeof w.doms[0]];
    const buf = a.driver.heap.alloc(50_000, { scattered: true });
    const src = await buf.vmap();
    fillPattern(src, 5);
    const hb = await a.driver.exportRemote(buf, b.domid);
    const hc = await a.driver.exportRemote(buf, c.domid);
    expect(sameHid(hb, hc)).toBe(false);
    expect(a.driver.query(hb).importer).toBe(b.domid);
    expect(a.driver.query(hc).importer).toBe(c.domid);
    const fb = await b.driver.exportFd(hb);
    const fc = await c.driver.exportFd(hc);
    expect(checkPattern(await fb.vmap(), 5)).toBe(-1);
    expect(checkPattern(await fc.vmap(), 5)).toBe(-1);
    // Each importer may use only its own id.
    expect(await codeOf(b.kernel.hv.peerRequest(DMABUF_EXPORT_FD, a.domid, { hid: hc, fdId: 99 }))).toBe('ERR_NOT_IMPORTER');
    await Promise.all([fb.put(), fc.put(), a.driver.unexport(hb), a.driver.unexport(hc)]);
    await Promise.all([a.driver.waitReleased(hb), a.driver.waitReleased(hc)]);
    await buf.vunmap(src);
    await buf.put();
    expectClean(w);
  });

  it('unexport while the importer holds a mapping revokes nothing until release; then grants end and pages are scrubbed', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [typeof w.doms[0], typeof w.doms[0]];
    const buf = a.driver.heap.alloc(64 * 4096, { scattered: true });
    const frames = Array.from(buf.priv.frames);
    const src = await buf.vmap();
    fillPattern(src, 11);
    await buf.vunmap(src);
    const hid = await a.driver.exportRemote(buf, b.domid);
    // The user lets go of the buffer: the export keeps it alive.
    await buf.put();
    const fd = await b.driver.exportFd(hid);
    const view = await fd.vmap();
    const granted = a.kernel.stats().grants.granted;
    expect(granted).toBe(64 + 2);

    expect(await a.driver.unexport(hid)).toBe('unexported');
    expect(a.driver.query(hid)).toMatchObject({ unexported: true, busy: true, state: ExportState.WaitingRelease });
    expect(b.driver.query(hid)).toMatchObject({ unexported: true, state: BufferImportState.Invalid });
    // Nothing revoked: every grant still there, the data pages still mapped (busy) and readable.
    expect(a.kernel.stats().grants.granted).toBe(granted);
    expect(w.hv.stats().domains.find((d) => d.domid === a.domid)!.busyGrants).toBe(64);
    expect(checkPattern(view, 11)).toBe(-1);
    // No new fd: the importer refuses at once.
    expect(await codeOf(b.driver.exportFd(hid))).toBe('ERR_UNEXPORTED');
    const released = a.driver.waitReleased(hid, 10_000);
    await fd.put();
    await released;
    expect(view.byteLength).toBe(0);
    for (const f of frames) {
      expect(a.kernel.allocator.isAllocated(f)).toBe(false);
      expect(a.kernel.ram.page(f).every((x) => x === 0)).toBe(true);
    }
    expect(b.driver.importer.find(hid)).toBeUndefined();
    expectClean(w);
  });

  it('an unexport delay runs out: the notice goes, and with no fd open the buffer is freed', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [typeof w.doms[0], typeof w.doms[0]];
    const buf = a.driver.heap.alloc(4096);
    const hid = await a.driver.exportRemote(buf, b.domid);
    const done = a.driver.unexport(hid, { delayMs: 20 });
    expect(await a.driver.unexport(hid, { delayMs: 1 })).toBe('unexported');
    expect(await done).toBe('unexported');
    await a.driver.waitReleased(hid, 10_000);
    expect(await codeOf(() => b.driver.query(hid))).toBe('ERR_UNKNOWN_BUFFER');
    await buf.put();
    expectClean(w);
  });

  it('only the exporting domain, and the owner that exported, may unexport', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [typeof w.doms[0], typeof w.doms[0]];
    const buf = a.driver.heap.alloc(4096);
    const hid = await a.driver.exportRemote(buf, b.domid, { owner: 'compositor' });
    expect(await codeOf(b.driver.unexport(hid))).toBe('ERR_NOT_EXPORTER');
    expect(await codeOf(a.driver.unexport(hid))).toBe('ERR_NOT_PERMITTED');
    expect(await codeOf(a.driver.unexport(hid, { owner: 'intruder' }))).toBe('ERR_NOT_PERMITTED');
    expect(a.driver.query(hid).unexported).toBe(false);
    // Closing the owner's device unexports everything it exported.
    expect(a.driver.releaseOwner('compositor')).toBe(1);
    await a.driver.waitReleased(hid, 10_000);
    await buf.put();
    expectClean(w);
  });

  it('honours the exporter\'s refusal: no fd, no miscount (the original ignored it)', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [typeof w.doms[0], typeof w.doms[0]];
    const buf = a.driver.heap.alloc(4096);
    const hid = await a.driver.exportRemote(buf, b.domid);
    const fd = await b.driver.exportFd(hid);
    expect(await b.driver.importer.confirmation(fd)).toBe('counted');
    // The exporter stops accepting fds without the importer hearing of it (a lost notice).
    // Its state machine taken straight to waiting-release by legal transitions, without their side effects.
    const entry = a.driver.exporter.find(hid)!;
    entry.lifecycle.apply('unexport');
    entry.lifecycle.apply('unexport-due');
    expect(entry.state).toBe(ExportState.WaitingRelease);
    expect(await codeOf(b.driver.exportFd(hid))).toBe('ERR_UNEXPORTED');
    expect(b.driver.query(hid)).toMatchObject({ unexported: true, busy: true });
    expect(b.driver.importer.find(hid)!.fds.size).toBe(1);
    expect(a.driver.exporter.find(hid)!.fds.size).toBe(1);
    // The one real fd's release frees the buffer; nothing was freed early.
    const released = a.driver.waitReleased(hid, 10_000);
    await fd.put();
    await released;
    await buf.put();
    expectClean(w);
  });
});
