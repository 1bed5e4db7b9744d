/**
 * GNTTAB_MAP_DIRECTORY (v2, SPEC.md 7.7): the backend reads a gref
 * directory with every check of a map and maps the data pages in one
 * request; long batches are sliced; the cost counters of HV_GRANT_STATS.
 */
import { describe, expect, it } from 'vitest';
import { GNTMAP, GNTST, GTF, PAGE_SIZE } from '../../protocol/index.ts';
import type { DirFormat } from '../../protocol/messages/dmabuf.ts';
import { GNTTAB_MAP_DIRECTORY, GNTTAB_MAP_GRANT_REF_V2, GNTTAB_SETUP_TABLE, GNTTAB_UNMAP_GRANT_REF_V2, HV_GRANT_STATS } from '../../protocol/messages/grant.ts';
import { PING } from '../../protocol/messages/session.ts';
import { directoryPageCount, encodeDirectory } from '../../src/hyper-dmabuf/directory/index.ts';
import { writeWordsLE } from '../../src/hyper-dmabuf/directory/le-words.ts';
import { GRANT_SLICE } from '../../src/hv/grant-map.ts';
import { connectControl, errorCode, publishRange, startBackend, startGuest, type Guest } from './helpers.ts';

const RO = GNTMAP.host_map | GNTMAP.readonly;

/** A buffer of `nents` pages granted by `a` to `to`: data refs 1..nents at frames 1000+, directory refs after them at frames 100+. */
async function grantBuffer(a: Guest, to: number, nents: number, format: DirFormat): Promise<{ dirRef: number; dataRefs: number[]; dirRefs: number[] }> {
  await a.client.call(GNTTAB_SETUP_TABLE, { nrFrames: 16 });
  const dataRefs = publishRange(a.table, 1, nents, to, true, (r) => 1000 + r);
  const nDir = directoryPageCount(format, nents);
  const dirRefs = publishRange(a.table, nents + 1, nDir, to, true, (r) => 100 + r - nents);
  const pages = encodeDirectory(format, dataRefs, dirRefs);
  pages.forEach((words, k) => writeWordsLE(words, a.ram.subarray((101 + k) * PAGE_SIZE, (102 + k) * PAGE_SIZE)));
  return { dirRef: dirRefs[0]!, dataRefs, dirRefs };
}

function busy(a: Guest, ref: number): number {
  return a.table.loadHeader(ref).flags & (GTF.reading | GTF.writing);
}

describe('GNTTAB_MAP_DIRECTORY', () => {
  it.each(['multilevel', 'linked'] as DirFormat[])('reads a %s directory and maps every data page in one request; directory pages are left unpinned', async (format) => {
    const hv = await startBackend();
    const a = await startGuest(hv, { memPages: 4096 });
    const b = await startGuest(hv);
    expect(b.client.version).toBe(2);
    const nents = 2500;
    const { dirRef, dataRefs, dirRefs } = await grantBuffer(a, b.domid, nents, format);
    const r = await b.client.call(GNTTAB_MAP_DIRECTORY, { dom: a.domid, flags: RO, format, dirRef, nents });
    expect(Array.from(r.dirRefs)).toEqual(dirRefs);
    expect(Array.from(r.dirStatus)).toEqual(dirRefs.map(() => GNTST.okay));
    expect(r.status.every((s) => s === GNTST.okay)).toBe(true);
    expect(Array.from(r.frame)).toEqual(dataRefs.map((ref) => 1000 + ref));
    expect(r.ramPath).toBe(a.created.ramPath);
    for (const ref of dirRefs) expect(busy(a, ref), `dir ref ${ref}`).toBe(0);
    expect(busy(a, dataRefs[0]!)).toBe(GTF.reading);
    expect(hv.stats().domains.find((d) => d.domid === b.domid)).toMatchObject({ mappings: nents });
    const un = await b.client.call(GNTTAB_UNMAP_GRANT_REF_V2, { handles: r.handle });
    expect(un.status.every((s) => s === GNTST.okay)).toBe(true);
    expect(hv.stats().domains.every((d) => d.busyGrants === 0 && d.mappings === 0)).toBe(true);
  });

  it('keeps GTF_reading on a directory page another mapping still pins (XSA-230), and clears nothing else', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv, { memPages: 4096 });
    const b = await startGuest(hv);
    const { dirRef } = await grantBuffer(a, b.domid, 10, 'multilevel');
    const pin = await b.client.call(GNTTAB_MAP_GRANT_REF_V2, { dom: a.domid, flags: RO, refs: Uint32Array.of(dirRef) });
    const r = await b.client.call(GNTTAB_MAP_DIRECTORY, { dom: a.domid, flags: RO, format: 'multilevel', dirRef, nents: 10 });
    expect(Array.from(r.dirStatus)).toEqual([GNTST.okay, GNTST.okay]);
    expect(busy(a, dirRef)).toBe(GTF.reading);
    await b.client.call(GNTTAB_UNMAP_GRANT_REF_V2, { handles: Uint32Array.of(...r.handle, ...pin.handle) });
    expect(busy(a, dirRef)).toBe(0);
  });

  it('a directory page not granted to the caller stops the walk: its status is reported and nothing is mapped or pinned', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv, { memPages: 4096 });
    const b = await startGuest(hv);
    const c = await startGuest(hv);
    const { dirRef, dirRefs } = await grantBuffer(a, b.domid, 2048, 'multilevel');
    // The second leaf is granted to c instead.
    a.table.publish(dirRefs[2]!, c.domid, 103, true);
    const r = await b.client.call(GNTTAB_MAP_DIRECTORY, { dom: a.domid, flags: RO, format: 'multilevel', dirRef, nents: 2048 });
    expect(Array.from(r.dirRefs)).toEqual(dirRefs);
    expect(Array.from(r.dirStatus)).toEqual([GNTST.okay, GNTST.okay, GNTST.permission_denied]);
    expect([r.status.length, r.handle.length, r.frame.length]).toEqual([0, 0, 0]);
    expect(hv.stats().domains.every((d) => d.busyGrants === 0 && d.mappings === 0)).toBe(true);
  });

  it('a malformed directory is ERR_BAD_DIRECTORY with nothing pinned; nents over the bound is refused before any grant is touched', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv, { memPages: 4096 });
    const b = await startGuest(hv);
    const { dirRef } = await grantBuffer(a, b.domid, 100, 'linked');
    // A non-zero unused slot after the 100 refs.
    new DataView(a.ram.buffer, a.ram.byteOffset + 101 * PAGE_SIZE).setUint32(4 * 200, 77, true);
    const err = await errorCode(b.client.call(GNTTAB_MAP_DIRECTORY, { dom: a.domid, flags: RO, format: 'linked', dirRef, nents: 100 }));
    expect(err).toBe('ERR_BAD_DIRECTORY');
    expect(hv.stats().domains.every((d) => d.busyGrants === 0 && d.mappings === 0)).toBe(true);
    // Too many pages for the format: refused before any grant is touched.
    expect(await errorCode(b.client.call(GNTTAB_MAP_DIRECTORY, { dom: a.domid, flags: RO, format: 'multilevel', dirRef, nents: 1024 * 1024 + 1 })))
      .toBe('ERR_FIELD_RANGE');
  });

  it('whole-request checks answer in dirStatus, and a failed data entry leaves the others mapped (XSA-361)', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv, { memPages: 4096 });
    const b = await startGuest(hv);
    const { dirRef, dataRefs } = await grantBuffer(a, b.domid, 50, 'multilevel');
    const noHostMap = await b.client.call(GNTTAB_MAP_DIRECTORY, { dom: a.domid, flags: GNTMAP.readonly, format: 'multilevel', dirRef, nents: 50 });
    expect({ dirRefs: Array.from(noHostMap.dirRefs), dirStatus: Array.from(noHostMap.dirStatus), n: noHostMap.status.length })
      .toEqual({ dirRefs: [dirRef], dirStatus: [GNTST.bad_gntref], n: 0 });
    const noDomain = await b.client.call(GNTTAB_MAP_DIRECTORY, { dom: 999, flags: RO, format: 'multilevel', dirRef, nents: 50 });
    expect(Array.from(noDomain.dirStatus)).toEqual([GNTST.bad_domain]);
    // Data page 7 is not granted any more; page 8 is granted read-only and mapped writable.
    a.table.clearFlags(dataRefs[7]!, 0xffff);
    const ro = await b.client.call(GNTTAB_MAP_DIRECTORY, { dom: a.domid, flags: RO, format: 'multilevel', dirRef, nents: 50 });
    expect(ro.status[7]).toBe(GNTST.permission_denied);
    expect(ro.status.filter((s) => s !== GNTST.okay)).toHaveLength(1);
    const rw = await b.client.call(GNTTAB_MAP_DIRECTORY, { dom: a.domid, flags: GNTMAP.host_map, format: 'multilevel', dirRef, nents: 50 });
    // Every page is granted read-only: a writable map is refused entry by entry, and nothing stays pinned by it.
    expect(rw.status.every((s) => s === GNTST.permission_denied)).toBe(true);
    const okHandles = ro.handle.filter((_, i) => ro.status[i] === GNTST.okay);
    expect((await b.client.call(GNTTAB_UNMAP_GRANT_REF_V2, { handles: okHandles })).status.every((s) => s === GNTST.okay)).toBe(true);
    expect(hv.stats().domains.every((d) => d.busyGrants === 0 && d.mappings === 0)).toBe(true);
  });
});

describe('long v2 batches', () => {
  it('a 65,536-entry map is processed in slices, other requests are answered in between, and HV_GRANT_STATS counts it', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv, { memPages: 70_000, maxGrantFrames: 256 });
    const b = await startGuest(hv);
    const other = await startGuest(hv);
    const control = await connectControl(hv);
    await a.client.call(GNTTAB_SETUP_TABLE, { nrFrames: 256 });
    const refs = Uint32Array.from(publishRange(a.table, 1, 65_536, b.domid, true, (r) => r));
    const before = await control.call(HV_GRANT_STATS, {});
    let pingAnswered = false;
    const mapped = b.client.call(GNTTAB_MAP_GRANT_REF_V2, { dom: a.domid, flags: RO, refs }).then((r) => ({ r, pingFirst: pingAnswered }));
    // Sent right after the batch: answered before the batch ends, because the batch yields between slices.
    await other.client.call(PING, { nonce: 1 }).then(() => { pingAnswered = true; });
    const { r, pingFirst } = await mapped;
    expect(pingFirst).toBe(true);
    expect(r.status.every((s) => s === GNTST.okay)).toBe(true);
    const after = await control.call(HV_GRANT_STATS, {});
    expect(after.mapEntries - before.mapEntries).toBe(65_536);
    expect(after.slices - before.slices).toBe(65_536 / GRANT_SLICE);
    expect(after.mapNs).toBeGreaterThan(before.mapNs);
    const un = await b.client.call(GNTTAB_UNMAP_GRANT_REF_V2, { handles: r.handle });
    expect(un.status.every((s) => s === GNTST.okay)).toBe(true);
    expect((await control.call(HV_GRANT_STATS, {})).unmapEntries - after.unmapEntries).toBe(65_536);
    expect(hv.stats().domains.every((d) => d.busyGrants === 0 && d.mappings === 0)).toBe(true);
  }, 60_000);

  it('a caller that dies mid-batch leaves nothing mapped or busy', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv, { memPages: 70_000, maxGrantFrames: 256 });
    const b = await startGuest(hv);
    await a.client.call(GNTTAB_SETUP_TABLE, { nrFrames: 256 });
    const refs = Uint32Array.from(publishRange(a.table, 1, 65_536, b.domid, true, (r) => r));
    const pending = b.client.call(GNTTAB_MAP_GRANT_REF_V2, { dom: a.domid, flags: RO, refs }).catch((e: unknown) => e);
    await hv.destroyDomain(b.domid);
    expect(await pending).toMatchObject({ code: 'ERR_CLOSED' });
    expect(hv.stats().domains.every((d) => d.busyGrants === 0 && d.mappings === 0)).toBe(true);
  }, 60_000);
});
