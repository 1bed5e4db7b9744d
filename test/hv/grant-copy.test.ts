/** GNTTAB_COPY: both directions, bounds, and the grant rules on each side. */
import { describe, expect, it } from 'vitest';
import { GNTCOPY, GNTMAP, GNTST, GTF, PAGE_SIZE } from '../../protocol/index.ts';
import { copyOps, mapRefs, startBackend, startGuest, unmapHandles, useVersion, VERSIONS, type Guest } from './helpers.ts';

type Op = { source: { ref: number; dom: number; offset: number }; dest: { ref: number; dom: number; offset: number }; len: number; flags: number };

function copy(g: Guest, ops: Op[]) {
  return copyOps(g.client, { ops });
}

describe.each(VERSIONS)('grant copy (v%i)', (version) => {
  useVersion(version);

  it('copies from a granted page into my frame and from my frame into a writable grant', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv);
    const b = await startGuest(hv);
    a.ram.fill(0xab, 3 * PAGE_SIZE, 4 * PAGE_SIZE);
    a.table.publish(1, b.domid, 3, true);   // read-only grant of frame 3
    a.table.publish(2, b.domid, 4, false);  // writable grant of frame 4
    b.ram.fill(0x5c, 7 * PAGE_SIZE + 100, 7 * PAGE_SIZE + 200);
    const res = await copy(b, [
      { source: { ref: 1, dom: a.domid, offset: 10 }, dest: { ref: 6, dom: b.domid, offset: 0 }, len: 4086, flags: GNTCOPY.source_gref },
      { source: { ref: 7, dom: b.domid, offset: 100 }, dest: { ref: 2, dom: a.domid, offset: 4000 }, len: 96, flags: GNTCOPY.dest_gref },
    ]);
    expect(res.status).toEqual([GNTST.okay, GNTST.okay]);
    expect(b.ram.subarray(6 * PAGE_SIZE, 6 * PAGE_SIZE + 4086).every((x) => x === 0xab)).toBe(true);
    expect(b.ram[6 * PAGE_SIZE + 4086]).toBe(0);
    expect(a.ram.subarray(4 * PAGE_SIZE + 4000, 5 * PAGE_SIZE).every((x) => x === 0x5c)).toBe(true);
    expect(a.ram[4 * PAGE_SIZE + 3999]).toBe(0);
    // The temporary pins are gone.
    expect(a.table.loadHeader(1).flags).toBe(GTF.permit_access | GTF.readonly);
    expect(a.table.loadHeader(2).flags).toBe(GTF.permit_access);
  });

  it('splits a batch of 65,536 ops into slices with turns of the event loop between them (SPEC 7.6 step 5), each op done once, in order', async () => {
    const hv = await startBackend();
    const b = await startGuest(hv, { memPages: 80 });
    b.ram.fill(0xff, 0, PAGE_SIZE);
    // Op i copies 4 bytes of frame 0 to its own place in frames 1..64: the destination shows how far the batch got.
    const ops: Op[] = Array.from({ length: 65_536 }, (_, i) => ({
      source: { ref: 0, dom: b.domid, offset: 0 }, dest: { ref: 1 + (i >> 10), dom: b.domid, offset: (i & 1023) * 4 }, len: 4, flags: 0,
    }));
    const dest = b.ram.subarray(PAGE_SIZE, 65 * PAGE_SIZE);
    const seen: number[] = [];
    let done = false;
    // This process runs the backend too: a turn observed between two slices sees part of the batch done.
    const watch = () => {
      if (done) return;
      let n = 0;
      for (let i = 0; i < dest.length; i += 4) if (dest[i] === 0xff) n++;
      if (n > 0 && n < 65_536 && seen.at(-1) !== n) seen.push(n);
      setImmediate(watch);
    };
    setImmediate(watch);
    const res = await copy(b, ops);
    done = true;
    expect(res.status.every((s) => s === GNTST.okay)).toBe(true);
    expect(dest.every((x) => x === 0xff)).toBe(true);
    expect(seen.length, `partial states seen: ${seen.join(', ')}`).toBeGreaterThanOrEqual(2);
    expect(seen.every((n) => n % 4096 === 0), 'a slice is 4,096 ops').toBe(true);
  }, 30_000);

  it('checks bounds, grantee, read-only destination, frames, and domains per op', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv, { memPages: 16 });
    const b = await startGuest(hv, { memPages: 16 });
    const c = await startGuest(hv, { memPages: 16 });
    a.table.publish(1, b.domid, 3, true);
    a.table.publish(2, c.domid, 4, false);
    const mine = (ref: number, offset = 0) => ({ ref, dom: b.domid, offset });
    const theirs = (ref: number, offset = 0) => ({ ref, dom: a.domid, offset });
    const res = await copy(b, [
      { source: theirs(1, 4000), dest: mine(1), len: 97, flags: GNTCOPY.source_gref },          // crosses the page
      { source: theirs(1), dest: mine(1, 4095), len: 2, flags: GNTCOPY.source_gref },           // dest crosses the page
      { source: mine(1), dest: theirs(1), len: 8, flags: GNTCOPY.dest_gref },                   // read-only as dest
      { source: theirs(2), dest: mine(1), len: 8, flags: GNTCOPY.source_gref },                 // granted to c
      { source: theirs(0), dest: mine(1), len: 8, flags: GNTCOPY.source_gref },                 // ref 0
      { source: { ref: 1, dom: 999, offset: 0 }, dest: mine(1), len: 8, flags: GNTCOPY.source_gref }, // no such domain
      { source: mine(16), dest: mine(1), len: 8, flags: 0 },                                     // frame outside my RAM
      { source: { ref: 3, dom: a.domid, offset: 0 }, dest: mine(1), len: 8, flags: 0 },          // a's frame, not a grant
      { source: theirs(1), dest: mine(1), len: 0, flags: GNTCOPY.source_gref },                  // empty copy is fine
    ]);
    expect(res.status).toEqual([
      GNTST.bad_copy_arg, GNTST.bad_copy_arg, GNTST.permission_denied, GNTST.permission_denied, GNTST.bad_gntref,
      GNTST.bad_domain, GNTST.bad_page, GNTST.permission_denied, GNTST.okay,
    ]);
    expect(a.table.loadHeader(1).flags).toBe(GTF.permit_access | GTF.readonly);
  });

  it('copies from a GTF_sub_page grant, which is copy-only (cannot be mapped)', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv);
    const b = await startGuest(hv);
    a.ram.fill(0x3c, 5 * PAGE_SIZE, 6 * PAGE_SIZE);
    a.table.publish(1, b.domid, 5, true);
    a.table.casHeader(1, a.table.loadHeader(1).header, (b.domid << 16) | GTF.permit_access | GTF.readonly | GTF.sub_page);
    const m = await mapRefs(b.client, { dom: a.domid, flags: GNTMAP.host_map | GNTMAP.readonly, refs: [1] });
    expect(m.status).toEqual([GNTST.permission_denied]);
    const res = await copy(b, [{ source: { ref: 1, dom: a.domid, offset: 0 }, dest: { ref: 2, dom: b.domid, offset: 0 }, len: PAGE_SIZE, flags: GNTCOPY.source_gref }]);
    expect(res.status).toEqual([GNTST.okay]);
    expect(b.ram.subarray(2 * PAGE_SIZE, 3 * PAGE_SIZE).every((x) => x === 0x3c)).toBe(true);
    expect(a.table.loadHeader(1).flags).toBe(GTF.permit_access | GTF.readonly | GTF.sub_page);
  });

  it('copies through a grant that is also mapped, keeping the mapping\'s busy bits', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv);
    const b = await startGuest(hv);
    a.table.publish(1, b.domid, 2, false);
    const m = await mapRefs(b.client, { dom: a.domid, flags: GNTMAP.host_map | GNTMAP.readonly, refs: [1] });
    b.ram.fill(7, 0, 16);
    const res = await copy(b, [{ source: { ref: 0, dom: b.domid, offset: 0 }, dest: { ref: 1, dom: a.domid, offset: 0 }, len: 16, flags: GNTCOPY.dest_gref }]);
    expect(res.status).toEqual([GNTST.okay]);
    expect(Array.from(a.ram.subarray(2 * PAGE_SIZE, 2 * PAGE_SIZE + 16))).toEqual(Array(16).fill(7));
    // The read-only mapping remains: GTF_reading stays, the copy's GTF_writing is gone.
    expect(a.table.loadHeader(1).flags).toBe(GTF.permit_access | GTF.reading);
    await unmapHandles(b.client, { handles: m.handle });
    expect(a.table.loadHeader(1).flags).toBe(GTF.permit_access);
  });
});
