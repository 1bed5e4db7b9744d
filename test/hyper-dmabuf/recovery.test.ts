/**
 * In-process: the recovery flows. Exporter death (imports invalid, open
 * mappings stay readable until released, then everything is freed),
 * importer death (its fds count as released, pending unexports complete),
 * and a failed mapping undone exactly with EXPORT_FD_FAILED.
 */
import { describe, expect, it } from 'vitest';
import { DOMAIN_DIED } from '../../protocol/messages/session.ts';
import { ExportState, BufferImportState } from '../../src/hyper-dmabuf/index.ts';
import { checkPattern, codeOf, expectClean, fillPattern, nextEvent, startWorld } from './world.ts';

describe('peer death', () => {
  it('exporter dies: imports become invalid, an open mapping stays readable until released, then all is freed', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [typeof w.doms[0], typeof w.doms[0]];
    const buf = a.driver.heap.alloc(32 * 4096, { scattered: true });
    const src = await buf.vmap();
    fillPattern(src, 21);
    const hMapped = await a.driver.exportRemote(buf, b.domid);
    const other = a.driver.heap.alloc(4096);
    const hIdle = await a.driver.exportRemote(other, b.domid);
    const fd = await b.driver.exportFd(hMapped);
    const view = await fd.vmap();
    const died = nextEvent(b.kernel.hv, DOMAIN_DIED);
    await w.hv.destroyDomain(a.domid);
    expect((await died).domid).toBe(a.domid);
    // The import without an fd is forgotten; the mapped one is invalid but readable.
    expect(b.driver.importer.find(hIdle)).toBeUndefined();
    expect(b.driver.query(hMapped)).toMatchObject({ unexported: true, busy: true, state: BufferImportState.Invalid });
    expect(b.driver.importer.find(hMapped)!.invalidReason).toBe('exporter-died');
    expect(checkPattern(view, 21)).toBe(-1);
    expect(await codeOf(b.driver.exportFd(hMapped))).toBe('ERR_UNEXPORTED');
    // The dead domain's RAM is pinned by the mapping, so the backend keeps it.
    expect(w.hv.stats().domains.some((d) => d.domid === a.domid)).toBe(true);
    await fd.put();
    expect(view.byteLength).toBe(0);
    expect(b.driver.importer.find(hMapped)).toBeUndefined();
    // Unpinned: the dead domain is gone with its files.
    expect(w.hv.stats().domains.some((d) => d.domid === a.domid)).toBe(false);
    // A dead exporter's process is gone with everything in it; this one shares the test's
    // process, so drop its own view and the shadow vmap it still holds by hand.
    for (const shadow of a.driver.exporter.find(hMapped)!.fds.values()) await shadow.undoAll(buf);
    await buf.vunmap(src);
    expectClean(w);
  });

  it('importer dies: its fds count as released and a pending unexport completes', async () => {
    const w = await startWorld(3);
    const [a, b, c] = w.doms as [typeof w.doms[0], typeof w.doms[0], typeof w.doms[0]];
    const buf = a.driver.heap.alloc(16 * 4096);
    const toB = await a.driver.exportRemote(buf, b.domid);
    const toC = await a.driver.exportRemote(buf, c.domid);
    const fdB = await b.driver.exportFd(toB);
    const att = await fdB.attach('gpu');
    await fdB.map(att);
    await b.driver.exportFd(toB);
    expect(a.driver.exporter.find(toB)!.fds.size).toBe(2);
    expect(await a.driver.unexport(toB)).toBe('unexported');
    expect(a.driver.query(toB).state).toBe(ExportState.WaitingRelease);
    const released = a.driver.waitReleased(toB, 10_000);
    const died = nextEvent(a.kernel.hv, DOMAIN_DIED);
    await w.hv.destroyDomain(b.domid);
    await died;
    await released;
    // The export to B was never unexported by the user but its importer is gone: freed too.
    const fdC = await c.driver.exportFd(toC);
    await fdC.put();
    await a.driver.unexport(toC);
    await a.driver.waitReleased(toC, 10_000);
    expect(buf.use()).toMatchObject({ attachments: 0, mappings: 0 });
    await buf.put();
    expectClean(w);
  });

  it('importer dies with a buffer exported but never unexported: the export is freed', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [typeof w.doms[0], typeof w.doms[0]];
    const buf = a.driver.heap.alloc(4096);
    const hid = await a.driver.exportRemote(buf, b.domid);
    await b.driver.exportFd(hid);
    const released = a.driver.waitReleased(hid, 10_000);
    const died = nextEvent(a.kernel.hv, DOMAIN_DIED);
    await w.hv.destroyDomain(b.domid);
    await died;
    await released;
    expect(await codeOf(a.driver.unexport(hid))).toBe('ERR_UNKNOWN_BUFFER');
    await buf.put();
    expectClean(w);
  });
});

describe('failed mapping', () => {
  it.each([1, 2])('a malformed directory (v%i): ERR_BAD_DIRECTORY, no fd, and the exporter\'s count is undone exactly', async (version) => {
    const w = await startWorld(2, { maxVersion: version });
    const [a, b] = w.doms as [typeof w.doms[0], typeof w.doms[0]];
    const buf = a.driver.heap.alloc(2000 * 4096);
    const hid = await a.driver.exportRemote(buf, b.domid);
    const dir = a.driver.exporter.find(hid)!.directory;
    // Corrupt the top page: second-level slot 1 (needed for 2000 pages) becomes 0.
    new Uint32Array(a.kernel.ram.page(dir.frames[0]!).buffer, a.kernel.ram.page(dir.frames[0]!).byteOffset, 1024)[1] = 0;
    expect(await codeOf(b.driver.exportFd(hid))).toBe('ERR_BAD_DIRECTORY');
    expect(b.driver.query(hid)).toMatchObject({ busy: false, unexported: false, state: BufferImportState.Registered });
    expect(b.kernel.stats().mapper.liveMappings).toBe(0);
    // Freed only if EXPORT_FD_FAILED took the fd back: both versions send the EXPORT_FD with the map
    // (SPEC 11.2 rules 2 and 3), so both undo it once the map failed.
    await a.driver.unexport(hid);
    await a.driver.waitReleased(hid, 10_000);
    expect(a.driver.stats().exporter).toMatchObject({ fdsAccepted: 1, fdsUndone: 1 });
    await buf.put();
    expectClean(w);
  });

  it('a data reference that is not granted: ERR_MAP_FAILED, nothing left mapped, count undone', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [typeof w.doms[0], typeof w.doms[0]];
    const buf = a.driver.heap.alloc(10 * 4096);
    const hid = await a.driver.exportRemote(buf, b.domid, { dirFormat: 'linked' });
    const dir = a.driver.exporter.find(hid)!.directory;
    const page = a.kernel.ram.page(dir.frames[0]!);
    new Uint32Array(page.buffer, page.byteOffset, 1024)[5] = 30_000;
    expect(await codeOf(b.driver.exportFd(hid))).toBe('ERR_MAP_FAILED');
    expect(b.driver.stats().importer.mapFailures).toBe(1);
    expect(b.kernel.stats().mapper.liveMappings).toBe(0);
    await a.driver.unexport(hid);
    await a.driver.waitReleased(hid, 10_000);
    await buf.put();
    expectClean(w);
  });
});
