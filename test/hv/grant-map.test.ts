/**
 * Batched grant map and unmap: per-entry statuses, busy bits, pins,
 * maptrack limits, and the grantee / read-only / range rules.
 */
import { describe, expect, it } from 'vitest';
import { GNTMAP, GNTST, GTF, INVALID_GRANT_HANDLE, MAX_PIN_COUNT } from '../../protocol/index.ts';
import {
  GNTTAB_QUERY_SIZE, GNTTAB_SETUP_TABLE,
} from '../../protocol/messages/grant.ts';
import { HV_STATS } from '../../protocol/messages/control.ts';
import {
  errorCode, connectControl, mapRefs, publishRange, startBackend, startGuest, unmapHandles, useVersion, VERSIONS, type Guest,
} from './helpers.ts';

const RW = GNTMAP.host_map;
const RO = GNTMAP.host_map | GNTMAP.readonly;

function map(g: Guest, dom: number, refs: number[], flags = RW) {
  return mapRefs(g.client, { dom, flags, refs });
}
function unmap(g: Guest, handles: number[]) {
  return unmapHandles(g.client, { handles });
}
function flagsOf(g: Guest, ref: number): number {
  return g.table.loadHeader(ref).flags;
}

describe.each(VERSIONS)('grant map (v%i)', (version) => {
  useVersion(version);

  it('maps 1,000+ refs in one batch and unmaps them, busy bits set then cleared', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv, { memPages: 2048 });
    const b = await startGuest(hv);
    expect(b.client.version).toBe(version);
    // Pages hold their own frame number, so the importer can check what it maps.
    const refs = publishRange(a.table, 1, 1500, b.domid, false, (r) => 2047 - r);
    const res = await map(b, a.domid, refs);
    expect(res.ramPath).toBe(a.created.ramPath);
    expect(res.status.every((s) => s === GNTST.okay)).toBe(true);
    expect(res.frame).toEqual(refs.map((r) => 2047 - r));
    expect(new Set(res.handle).size).toBe(1500);
    expect(res.handle.includes(INVALID_GRANT_HANDLE)).toBe(false);
    for (const r of refs) expect(flagsOf(a, r) & (GTF.reading | GTF.writing)).toBe(GTF.reading | GTF.writing);
    expect(a.table.endAccess(1)).toBe('busy');
    const stats = hv.stats().domains;
    expect(stats.find((d) => d.domid === a.domid)).toMatchObject({ grantsInUse: 1500, busyGrants: 1500 });
    expect(stats.find((d) => d.domid === b.domid)).toMatchObject({ mappings: 1500 });
    const un = await unmap(b, res.handle);
    expect(un.status.every((s) => s === GNTST.okay)).toBe(true);
    for (const r of refs) expect(flagsOf(a, r)).toBe(GTF.permit_access);
    expect(a.table.endAccess(1)).toBe('ended');
    expect(hv.stats().domains.find((d) => d.domid === b.domid)).toMatchObject({ mappings: 0 });
    // Handles are now stale.
    expect((await unmap(b, res.handle.slice(0, 3))).status).toEqual([GNTST.bad_handle, GNTST.bad_handle, GNTST.bad_handle]);
  });

  it('read-only map sets only GTF_reading', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv);
    const b = await startGuest(hv);
    a.table.publish(5, b.domid, 9, true);
    const res = await map(b, a.domid, [5], RO);
    expect(res.status).toEqual([GNTST.okay]);
    expect(flagsOf(a, 5)).toBe(GTF.permit_access | GTF.readonly | GTF.reading);
    await unmap(b, res.handle);
    expect(flagsOf(a, 5)).toBe(GTF.permit_access | GTF.readonly);
  });

  it('gives every entry of a mixed batch its own status, and the good handles stay valid (XSA-361)', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv, { memPages: 64 });
    const b = await startGuest(hv);
    const c = await startGuest(hv);
    a.table.publish(1, b.domid, 1, false);      // ok
    a.table.publish(2, c.domid, 2, false);      // for another domain
    a.table.publish(3, b.domid, 3, true);       // read-only
    a.table.publish(4, b.domid, 64, false);     // frame outside a's RAM
    a.table.publish(6, b.domid, 6, false);      // ok
    a.table.publish(7, b.domid, 7, false);
    a.table.casHeader(7, a.table.loadHeader(7).header, (b.domid << 16) | GTF.permit_access | GTF.sub_page); // sub-page
    const refs = [1, 0, 2, 3, 4, 5, 6, 4 * 512, 0xffffffff, 7];
    const res = await map(b, a.domid, refs);
    expect(res.status).toEqual([
      GNTST.okay, GNTST.bad_gntref, GNTST.permission_denied, GNTST.permission_denied, GNTST.bad_page,
      GNTST.permission_denied, GNTST.okay, GNTST.bad_gntref, GNTST.bad_gntref, GNTST.permission_denied,
    ]);
    expect(res.handle.filter((h) => h !== INVALID_GRANT_HANDLE)).toHaveLength(2);
    expect(res.frame[0]).toBe(1);
    expect(res.frame[6]).toBe(6);
    // The bad_page entry had its busy bits undone.
    expect(flagsOf(a, 4)).toBe(GTF.permit_access);
    expect(flagsOf(a, 2)).toBe(GTF.permit_access);
    const un = await unmap(b, [res.handle[0]!, res.handle[1]!, res.handle[6]!]);
    expect(un.status).toEqual([GNTST.okay, GNTST.bad_handle, GNTST.okay]);
    expect(flagsOf(a, 1)).toBe(GTF.permit_access);
    expect(flagsOf(a, 6)).toBe(GTF.permit_access);
  });

  it('refuses a third domain with GNTST_permission_denied', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv);
    const b = await startGuest(hv);
    const c = await startGuest(hv);
    a.table.publish(1, b.domid, 1, false);
    expect((await map(c, a.domid, [1], RO)).status).toEqual([GNTST.permission_denied]);
    // Also while b has it mapped (the active entry's grantee decides).
    const mb = await map(b, a.domid, [1]);
    expect(mb.status).toEqual([GNTST.okay]);
    expect((await map(c, a.domid, [1], RO)).status).toEqual([GNTST.permission_denied]);
    await unmap(b, mb.handle);
  });

  it('refuses a writable map of a read-only grant, before and after a read-only pin', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv);
    const b = await startGuest(hv);
    a.table.publish(1, b.domid, 1, true);
    expect((await map(b, a.domid, [1], RW)).status).toEqual([GNTST.permission_denied]);
    const ro = await map(b, a.domid, [1], RO);
    expect((await map(b, a.domid, [1], RW)).status).toEqual([GNTST.permission_denied]);
    expect(flagsOf(a, 1) & GTF.writing).toBe(0);
    await unmap(b, ro.handle);
  });

  it('checks the whole batch: unknown domain, missing host_map, device maps', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv);
    const b = await startGuest(hv);
    a.table.publish(1, b.domid, 1, false);
    expect((await map(b, 999, [1, 2])).status).toEqual([GNTST.bad_domain, GNTST.bad_domain]);
    expect((await map(b, 0, [1])).status).toEqual([GNTST.bad_domain]);
    expect((await map(b, a.domid, [1], GNTMAP.readonly)).status).toEqual([GNTST.bad_gntref]);
    expect((await map(b, a.domid, [1], GNTMAP.host_map | GNTMAP.device_map)).status).toEqual([GNTST.general_error]);
    expect(flagsOf(a, 1)).toBe(GTF.permit_access);
    expect((await map(b, a.domid, [])).status).toEqual([]);
  });

  it('refuses never-issued handles with GNTST_bad_handle', async () => {
    const hv = await startBackend();
    const b = await startGuest(hv);
    const res = await unmap(b, [0, 1, 0x100000, INVALID_GRANT_HANDLE, 12345678]);
    expect(res.status).toEqual(Array(5).fill(GNTST.bad_handle));
  });

  it('another domain cannot unmap my handles', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv);
    const b = await startGuest(hv);
    const c = await startGuest(hv);
    a.table.publish(1, b.domid, 1, false);
    const res = await map(b, a.domid, [1]);
    expect((await unmap(c, res.handle)).status).toEqual([GNTST.bad_handle]);
    expect(a.table.isBusy(1)).toBe(true);
    await unmap(b, res.handle);
  });

  it('clears busy bits only when the last mapping of that kind goes (XSA-230)', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv);
    const b = await startGuest(hv);
    a.table.publish(1, b.domid, 1, false);
    const w1 = await map(b, a.domid, [1], RW);
    const w2 = await map(b, a.domid, [1], RW);
    const r1 = await map(b, a.domid, [1], RO);
    expect(flagsOf(a, 1)).toBe(GTF.permit_access | GTF.reading | GTF.writing);
    await unmap(b, w1.handle);
    expect(flagsOf(a, 1)).toBe(GTF.permit_access | GTF.reading | GTF.writing);
    expect(a.table.endAccess(1)).toBe('busy');
    await unmap(b, w2.handle);
    // No writable pin left: GTF_writing goes, GTF_reading stays for the read-only mapping.
    expect(flagsOf(a, 1)).toBe(GTF.permit_access | GTF.reading);
    expect(a.table.endAccess(1)).toBe('busy');
    await unmap(b, r1.handle);
    expect(flagsOf(a, 1)).toBe(GTF.permit_access);
    expect(a.table.endAccess(1)).toBe('ended');
    expect(a.table.loadHeader(1).flags).toBe(0);
  });

  it('uses the frame recorded at first pin, not what the granter writes later (XSA-155)', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv);
    const b = await startGuest(hv);
    a.table.publish(1, b.domid, 10, false);
    const m1 = await map(b, a.domid, [1], RO);
    // The granter cannot end access while busy, but it can scribble on the frame field.
    new Uint32Array(a.tableBuf)[1 * 2 + 1] = 200;
    const m2 = await map(b, a.domid, [1], RO);
    expect(m2.frame).toEqual([10]);
    await unmap(b, [...m1.handle, ...m2.handle]);
    // Unpinned now: a new map reads the entry again.
    expect((await map(b, a.domid, [1], RO)).frame).toEqual([200]);
  });

  it('fails a pin overflow cleanly with GNTST_no_space and keeps the others', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv);
    const b = await startGuest(hv);
    a.table.publish(1, b.domid, 1, false);
    const refs = Array(MAX_PIN_COUNT + 3).fill(1);
    const res = await map(b, a.domid, refs, RO);
    expect(res.status.slice(0, MAX_PIN_COUNT).every((s) => s === GNTST.okay)).toBe(true);
    expect(res.status.slice(MAX_PIN_COUNT)).toEqual([GNTST.no_space, GNTST.no_space, GNTST.no_space]);
    // The writable counter is separate.
    const w = await map(b, a.domid, [1], RW);
    expect(w.status).toEqual([GNTST.okay]);
    const good = res.handle.filter((h) => h !== INVALID_GRANT_HANDLE);
    expect((await unmap(b, [...good, ...w.handle])).status.every((s) => s === GNTST.okay)).toBe(true);
    expect(flagsOf(a, 1)).toBe(GTF.permit_access);
  });

  it('bounds the maptrack: GNTST_no_device_space when full, room again after unmap', async () => {
    const hv = await startBackend({ maxMaptrackEntries: 10 });
    const a = await startGuest(hv);
    const b = await startGuest(hv);
    const refs = publishRange(a.table, 1, 12, b.domid, false);
    const res = await map(b, a.domid, refs);
    expect(res.status.slice(0, 10).every((s) => s === GNTST.okay)).toBe(true);
    expect(res.status.slice(10)).toEqual([GNTST.no_device_space, GNTST.no_device_space]);
    expect(a.table.isBusy(11)).toBe(false);
    await unmap(b, res.handle.slice(0, 2));
    const again = await map(b, a.domid, [11, 12]);
    expect(again.status).toEqual([GNTST.okay, GNTST.okay]);
    // Reused slots give new handles: the old ones stay stale.
    expect(again.handle).not.toContain(res.handle[0]);
    expect((await unmap(b, res.handle.slice(0, 2))).status).toEqual([GNTST.bad_handle, GNTST.bad_handle]);
    await unmap(b, [...res.handle.slice(2, 10), ...again.handle]);
  });

  it('grows the table with GNTTAB_SETUP_TABLE; refs beyond nrFrames*512 are bad until then', async () => {
    const hv = await startBackend();
    const ctl = await connectControl(hv);
    const a = await startGuest(hv, { maxGrantFrames: 8 });
    const b = await startGuest(hv);
    expect(await a.client.call(GNTTAB_QUERY_SIZE, {})).toEqual({ nrFrames: 4, maxFrames: 8 });
    a.table.publish(2048, b.domid, 1, false);
    expect((await map(b, a.domid, [2048])).status).toEqual([GNTST.bad_gntref]);
    expect(await a.client.call(GNTTAB_SETUP_TABLE, { nrFrames: 5 })).toEqual({ nrFrames: 5, maxFrames: 8 });
    expect(await a.client.call(GNTTAB_SETUP_TABLE, { nrFrames: 2 })).toEqual({ nrFrames: 5, maxFrames: 8 });
    const m = await map(b, a.domid, [2048]);
    expect(m.status).toEqual([GNTST.okay]);
    expect(await errorCode(a.client.call(GNTTAB_SETUP_TABLE, { nrFrames: 9 }))).toBe('ERR_LIMIT');
    const stats = await ctl.call(HV_STATS, {});
    expect(stats.domains.find((d) => d.domid === a.domid)).toMatchObject({ grantsInUse: 1, busyGrants: 1 });
    await unmap(b, m.handle);
  });

  it('maps only permit_access entries (not transfer, not invalid)', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv);
    const b = await startGuest(hv);
    a.table.publish(1, b.domid, 1, false);
    a.table.casHeader(1, a.table.loadHeader(1).header, (b.domid << 16) | GTF.accept_transfer);
    expect((await map(b, a.domid, [1])).status).toEqual([GNTST.permission_denied]);
    expect((await map(b, a.domid, [2])).status).toEqual([GNTST.permission_denied]);
  });
});
