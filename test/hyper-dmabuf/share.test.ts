/**
 * In-process pair: export, import through the contiguous view, read-write,
 * both directory formats with scattered pages and offsets, unexport and
 * release, and the one-batch mapping; over protocol v1 (the importer reads
 * the directory) and v2 (GNTTAB_MAP_DIRECTORY, one round trip), and between
 * a v1 and a v2 domain in both directions.
 */
import { describe, expect, it } from 'vitest';
import type { DirFormat } from '../../protocol/messages/dmabuf.ts';
import { ExportState, BufferImportState } from '../../src/hyper-dmabuf/index.ts';
import { checkPattern, expectClean, fillPattern, startWorld } from './world.ts';

describe.each([1, 2])('sharing a buffer between two domains (v%i)', (version) => {
  it('exports, imports with no copy, unexports and frees everything', async () => {
    const w = await startWorld(2, { maxVersion: version });
    const [a, b] = w.doms as [typeof w.doms[0], typeof w.doms[0]];
    const buf = a.driver.heap.alloc(1920 * 1080 * 4);
    const src = await buf.vmap();
    fillPattern(src);
    const hid = await a.driver.exportRemote(buf, b.domid, { priv: Uint8Array.from([1, 2, 3]) });
    expect(hid.dom).toBe(a.domid);
    // The importer registered it before the exporter got its answer: the event is already queued.
    const ev = b.driver.tryReadEvent();
    expect(ev).toMatchObject({ type: 'new_import', exporter: a.domid, size: 1920 * 1080 * 4, nents: 2025, update: false, droppedBefore: 0 });
    expect(Array.from(ev!.priv)).toEqual([1, 2, 3]);

    const fd = await b.driver.exportFd(ev!.hid);
    const view = await fd.vmap();
    expect(view.byteLength).toBe(1920 * 1080 * 4);
    expect(checkPattern(view)).toBe(-1);
    // No copy: a write by the exporter is seen at once by the importer.
    src[12345] = src[12345]! ^ 0xff;
    expect(view[12345]).toBe(src[12345]);
    src[12345] = src[12345]! ^ 0xff;
    const info = b.driver.importer.find(hid)!.mapInfo!;
    // v1: the importer maps the top page, then both second-level pages; v2: the backend reads them.
    expect(info).toEqual({ dirPages: 3, dirRounds: version === 1 ? 2 : 0, dataMapRequests: 1 });
    expect(b.kernel.hv.version).toBe(version);
    expect(b.driver.query(hid)).toMatchObject({ type: 'imported', exporter: a.domid, importer: b.domid, busy: true, state: BufferImportState.Mapped });
    expect(a.driver.query(hid)).toMatchObject({ type: 'exported', busy: true, unexported: false, delayedUnexported: false, privSize: 3 });

    await a.driver.unexport(hid);
    expect(a.driver.query(hid).state).toBe(ExportState.WaitingRelease);
    expect(view[0]).toBe(src[0]);
    await fd.put();
    expect(view.byteLength).toBe(0);
    await a.driver.waitReleased(hid, 10_000);
    await buf.vunmap(src);
    await buf.put();
    expectClean(w);
  });

  it.each(['multilevel', 'linked'] as DirFormat[])('shares a scattered 3840x2160x4 buffer through the %s directory', async (format) => {
    const w = await startWorld(2, { memPages: 20_000, maxVersion: version });
    const [a, b] = w.doms as [typeof w.doms[0], typeof w.doms[0]];
    const buf = a.driver.heap.alloc(3840 * 2160 * 4, { scattered: true });
    const src = await buf.vmap();
    fillPattern(src, 3);
    const hid = await a.driver.exportRemote(buf, b.domid, { dirFormat: format });
    const fd = await b.driver.exportFd(hid);
    const view = await fd.vmap();
    expect(checkPattern(view, 3)).toBe(-1);
    const info = b.driver.importer.find(hid)!.mapInfo!;
    expect(info.dataMapRequests).toBe(1);
    expect(info.dirPages).toBe(format === 'multilevel' ? 1 + 8 : 8);
    expect(info.dirRounds).toBe(version === 2 ? 0 : format === 'multilevel' ? 2 : 8);
    expect(b.kernel.mapper.stats().directoryMaps).toBe(version === 2 ? 1 : 0);
    await fd.put();
    await a.driver.unexport(hid);
    await a.driver.waitReleased(hid, 10_000);
    await buf.vunmap(src);
    await buf.put();
    expectClean(w);
  });

  it('lets the importer write a read-write export, and the exporter read it', async () => {
    const w = await startWorld(2, { maxVersion: version });
    const [a, b] = w.doms as [typeof w.doms[0], typeof w.doms[0]];
    const buf = a.driver.heap.alloc(10_000, { firstOffset: 123, scattered: true });
    const hid = await a.driver.exportRemote(buf, b.domid, { access: 'rw' });
    const fd = await b.driver.exportFd(hid);
    const view = await fd.vmap();
    expect(view.byteLength).toBe(10_000);
    fillPattern(view, 9);
    const src = await buf.vmap();
    expect(checkPattern(src, 9)).toBe(-1);
    await buf.vunmap(src);
    await fd.put();
    await a.driver.unexport(hid);
    await a.driver.waitReleased(hid);
    await buf.put();
    expectClean(w);
  });

  it('both versions send DMABUF_EXPORT_FD and the map together, before either is answered; v2 returns the first fd once mapped, before the answer (SPEC 11.2 rules 2 and 3)', async () => {
    const w = await startWorld(2, { maxVersion: version });
    const [a, b] = w.doms as [typeof w.doms[0], typeof w.doms[0]];
    const buf = a.driver.heap.alloc(3840 * 2160 * 4);
    const hid = await a.driver.exportRemote(buf, b.domid);
    const frames: string[] = [];
    b.kernel.observeWire((direction, type) => { frames.push(`${direction} ${type}`); });
    const fd = await b.driver.exportFd(hid);
    const whenReturned = [...frames];
    // v1 returns the fd after the answer; v2 returns the first fd once mapped and applies the answer after (rule 2).
    expect(await b.driver.importer.confirmation(fd)).toBe('counted');
    b.kernel.observeWire(undefined);
    // The backend serves one connection's requests in order. v1 waits for the answer: the EXPORT_FD
    // first, so that the exporter answers while the backend maps; it starts reading the directory
    // with a GNTTAB_MAP_GRANT_REF of its top page. v2's first fd waits only for its one
    // GNTTAB_MAP_DIRECTORY: the map first, the EXPORT_FD right behind it, before the fd exists. The
    // backend answers the map before it routes the EXPORT_FD, so the fd is returned before the answer.
    if (version === 2) {
      expect(frames.slice(0, 3)).toEqual(['out GNTTAB_MAP_DIRECTORY', 'out DMABUF_EXPORT_FD', 'in GNTTAB_MAP_DIRECTORY']);
      expect(whenReturned).not.toContain('in DMABUF_EXPORT_FD');
    } else {
      expect(frames.slice(0, 2)).toEqual(['out DMABUF_EXPORT_FD', 'out GNTTAB_MAP_GRANT_REF']);
    }
    expect(frames).toContain('in DMABUF_EXPORT_FD');
    if (version === 1) expect(whenReturned).toContain('in DMABUF_EXPORT_FD');
    expect(b.driver.stats().importer.earlyFds).toBe(version === 2 ? 1 : 0);
    await fd.put();
    await a.driver.unexport(hid);
    await a.driver.waitReleased(hid, 10_000);
    await buf.put();
    expectClean(w);
  });
});

describe('sharing between a v1 and a v2 domain', () => {
  it.each([[1, 2], [2, 1]])('exporter v%i, importer v%i: the import works, each side in its own version', async (ev, iv) => {
    const w = await startWorld(2, [{ maxVersion: ev }, { maxVersion: iv }]);
    const [a, b] = w.doms as [typeof w.doms[0], typeof w.doms[0]];
    expect([a.kernel.hv.version, b.kernel.hv.version]).toEqual([ev, iv]);
    const buf = a.driver.heap.alloc(1920 * 1080 * 4, { scattered: true });
    const src = await buf.vmap();
    fillPattern(src, 5);
    const hid = await a.driver.exportRemote(buf, b.domid, { dirFormat: 'linked' });
    const fd = await b.driver.exportFd(hid);
    const view = await fd.vmap();
    expect(checkPattern(view, 5)).toBe(-1);
    expect(b.driver.importer.find(hid)!.mapInfo!.dirRounds).toBe(iv === 2 ? 0 : 2);
    await fd.put();
    await a.driver.unexport(hid);
    await a.driver.waitReleased(hid, 10_000);
    await buf.vunmap(src);
    await buf.put();
    expectClean(w);
  });
});
