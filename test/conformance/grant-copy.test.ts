/**
 * Conformance, SPEC.md 7.6 (GNTTAB_COPY) and 7.3 (table size:
 * GNTTAB_SETUP_TABLE, GNTTAB_QUERY_SIZE).
 *
 * Copies are checked byte for byte in the RAM files of both domains, and
 * the pins a copy takes through the busy bits it leaves (none) in the
 * granter's table file.
 */
import { describe, expect, it } from 'vitest';
import { GNTCOPY, GNTMAP, GNTST, GTF, INVALID_GRANT_HANDLE, MAX_PIN_COUNT, PAGE_SIZE } from '../../protocol/index.ts';
import { useBackend, type Guest, type GuestOptions } from './support/harness.ts';

const hv = useBackend();

interface Side { ref: number; dom: number; offset: number }
interface Op { source: Side; dest: Side; len: number; flags: number }

/** GNTTAB_COPY in the connection's version: status an array in v1, packed i16 in v2 (SPEC 4.1, 15), read back as an array. */
async function copy(g: Guest, ops: Op[]): Promise<number[]> {
  const { status } = await g.client.call<{ status: number[] | Int16Array }>('GNTTAB_COPY', { ops });
  if (g.client.version >= 2) expect(status).toBeInstanceOf(Int16Array);
  return Array.from(status);
}
/** GNTTAB_MAP_GRANT_REF in the connection's version (packed in v2), read back as arrays. */
async function mapRefs(g: Guest, dom: number, flags: number, refs: number[]): Promise<{ status: number[]; handle: number[] }> {
  const packed = g.client.version >= 2;
  const r = await g.client.call<{ status: number[] | Int16Array; handle: number[] | Uint32Array }>('GNTTAB_MAP_GRANT_REF', { dom, flags, refs: packed ? Uint32Array.from(refs) : refs });
  return { status: Array.from(r.status), handle: Array.from(r.handle) };
}
const side = (dom: number, ref: number, offset = 0): Side => ({ ref, dom, offset });
function flagsOf(g: Guest, ref: number): number {
  return g.table.loadHeader(ref).flags;
}
/** Fills page `frame` of `g` with bytes (seed + i) & 0xff. */
function pattern(g: Guest, frame: number, seed: number): void {
  for (let i = 0; i < PAGE_SIZE; i++) g.ram[frame * PAGE_SIZE + i] = (seed + i) & 0xff;
}
function page(g: Guest, frame: number): Uint8Array {
  return g.ram.subarray(frame * PAGE_SIZE, (frame + 1) * PAGE_SIZE);
}
async function unmapAll(g: Guest, handles: number[]): Promise<void> {
  const packed = g.client.version >= 2;
  const status = Array.from((await g.client.call<{ status: number[] | Int16Array }>('GNTTAB_UNMAP_GRANT_REF', { handles: packed ? Uint32Array.from(handles) : handles })).status);
  expect(status.every((s) => s === GNTST.okay)).toBe(true);
}

// Every check over protocol v1 and v2 (the backend must speak both, SPEC 15): GNTTAB_COPY's status is packed in v2.
describe('SPEC 7.6 GNTTAB_COPY', () => describe.each([1, 2])('over protocol v%i', (version) => {
  const guest = (o: GuestOptions = {}): Promise<Guest> => hv.guest({ ...o, maxVersion: version });

  it('7.6: copies from a granted page (read-only is enough) into the caller\'s frame and from its frame into a writable grant, exactly the bytes named; the pins last only for the op', async () => {
    const a = await guest({ memPages: 16 });
    const b = await guest({ memPages: 16 });
    pattern(a, 3, 0x10);
    pattern(b, 7, 0x80);
    a.table.publish(1, b.domid, 3, true);
    a.table.publish(2, b.domid, 4, false);
    const status = await copy(b, [
      { source: side(a.domid, 1, 10), dest: side(b.domid, 6, 100), len: 3000, flags: GNTCOPY.source_gref },
      { source: side(b.domid, 7, 4000), dest: side(a.domid, 2, 0), len: 96, flags: GNTCOPY.dest_gref },
      { source: side(a.domid, 1, 0), dest: side(b.domid, 5, 0), len: 0, flags: GNTCOPY.source_gref },
    ]);
    expect(status).toEqual([GNTST.okay, GNTST.okay, GNTST.okay]);
    const expectedB6 = new Uint8Array(PAGE_SIZE);
    expectedB6.set(page(a, 3).subarray(10, 3010), 100);
    expect(Buffer.compare(page(b, 6), expectedB6)).toBe(0);
    const expectedA4 = new Uint8Array(PAGE_SIZE);
    expectedA4.set(page(b, 7).subarray(4000, 4096), 0);
    expect(Buffer.compare(page(a, 4), expectedA4)).toBe(0);
    expect(page(b, 5).every((x) => x === 0), 'len 0 copies nothing').toBe(true);
    expect([flagsOf(a, 1), flagsOf(a, 2)]).toEqual([GTF.permit_access | GTF.readonly, GTF.permit_access]);
    expect(await hv.statsOf(b.domid)).toMatchObject({ mappings: 0 });
    // Between two grants of two granters.
    const c = await guest({ memPages: 16 });
    c.table.publish(9, b.domid, 2, false);
    expect(await copy(b, [{ source: side(a.domid, 1, 0), dest: side(c.domid, 9, 0), len: PAGE_SIZE, flags: GNTCOPY.source_gref | GNTCOPY.dest_gref }])).toEqual([GNTST.okay]);
    expect(Buffer.compare(page(c, 2), page(a, 3))).toBe(0);
    expect(flagsOf(c, 9)).toBe(GTF.permit_access);
  });

  it('7.6 rule 1: offset + len past the page on either side gives GNTST_bad_copy_arg, before anything else is checked', async () => {
    const a = await guest({ memPages: 8 });
    const b = await guest({ memPages: 8 });
    a.table.publish(1, b.domid, 1, true);
    const status = await copy(b, [
      { source: side(a.domid, 1, 4000), dest: side(b.domid, 1), len: 97, flags: GNTCOPY.source_gref },
      { source: side(a.domid, 1), dest: side(b.domid, 1, 4095), len: 2, flags: GNTCOPY.source_gref },
      { source: side(0x7fef, 0, 1), dest: side(a.domid, 0), len: PAGE_SIZE, flags: GNTCOPY.source_gref | GNTCOPY.dest_gref },
      { source: side(b.domid, 1), dest: side(b.domid, 2), len: PAGE_SIZE, flags: 0 },
    ]);
    expect(status).toEqual([GNTST.bad_copy_arg, GNTST.bad_copy_arg, GNTST.bad_copy_arg, GNTST.okay]);
    expect(flagsOf(a, 1)).toBe(GTF.permit_access | GTF.readonly);
  });

  it('7.6 rule 2: a grant side: bad domain, then 7.4 checks 5-7 with the caller as grantee (a read-only grant as destination: permission denied); a frame side: the caller\'s own (permission denied) and inside its RAM (bad page)', async () => {
    const a = await guest({ memPages: 8 });
    const b = await guest({ memPages: 8 });
    const c = await guest({ memPages: 8 });
    a.table.publish(1, b.domid, 1, true);   // read-only, for b
    a.table.publish(2, c.domid, 2, false);  // for c
    a.table.publish(3, b.domid, 8, false);  // frame outside a's RAM
    a.table.publish(2048, b.domid, 1, false); // beyond the table
    a.words[4 * 2 + 1] = 4;
    a.words[4 * 2] = (b.domid << 16) | GTF.accept_transfer; // not permit_access
    const mine = (ref: number) => side(b.domid, ref);
    const src = GNTCOPY.source_gref;
    const dst = GNTCOPY.dest_gref;
    const cases: [string, Op, number][] = [
      ['unknown granter', { source: side(0x7fef, 1), dest: mine(1), len: 8, flags: src }, GNTST.bad_domain],
      ['the control domain as granter', { source: side(0, 1), dest: mine(1), len: 8, flags: src }, GNTST.bad_domain],
      ['ref 0', { source: side(a.domid, 0), dest: mine(1), len: 8, flags: src }, GNTST.bad_gntref],
      ['ref beyond the table', { source: side(a.domid, 2048), dest: mine(1), len: 8, flags: src }, GNTST.bad_gntref],
      ['granted to another domain', { source: side(a.domid, 2), dest: mine(1), len: 8, flags: src }, GNTST.permission_denied],
      ['not permit_access', { source: side(a.domid, 4), dest: mine(1), len: 8, flags: src }, GNTST.permission_denied],
      ['read-only grant as destination', { source: mine(1), dest: side(a.domid, 1), len: 8, flags: dst }, GNTST.permission_denied],
      ['granted frame outside the granter\'s RAM', { source: side(a.domid, 3), dest: mine(1), len: 8, flags: src }, GNTST.bad_page],
      ['a frame of another domain without the gref flag', { source: side(a.domid, 1), dest: mine(1), len: 8, flags: 0 }, GNTST.permission_denied],
      ['own frame outside own RAM', { source: mine(8), dest: mine(1), len: 8, flags: 0 }, GNTST.bad_page],
      ['own frame outside own RAM as destination', { source: mine(1), dest: mine(8), len: 8, flags: 0 }, GNTST.bad_page],
      // The source is checked first: both sides bad gives the source's status.
      ['both sides bad', { source: side(a.domid, 2), dest: side(0x7fef, 1), len: 8, flags: src | dst }, GNTST.permission_denied],
    ];
    const status = await copy(b, cases.map((c) => c[1]));
    cases.forEach(([name], i) => expect(status[i], name).toBe(cases[i]![2]));
    for (const r of [1, 2, 3]) expect(flagsOf(a, r) & (GTF.reading | GTF.writing), `ref ${r}`).toBe(0);
    expect(page(b, 1).every((x) => x === 0), 'nothing was copied').toBe(true);
  });

  it('7.1, 7.6: a GTF_sub_page grant is copy-only: it cannot be mapped but can be copied from', async () => {
    const a = await guest({ memPages: 8 });
    const b = await guest({ memPages: 8 });
    pattern(a, 5, 3);
    a.table.publish(1, b.domid, 5, true);
    a.words[2] = (b.domid << 16) | GTF.permit_access | GTF.readonly | GTF.sub_page;
    const m = await mapRefs(b, a.domid, GNTMAP.host_map | GNTMAP.readonly, [1]);
    expect(m.status).toEqual([GNTST.permission_denied]);
    expect(await copy(b, [{ source: side(a.domid, 1, 0), dest: side(b.domid, 2), len: PAGE_SIZE, flags: GNTCOPY.source_gref }])).toEqual([GNTST.okay]);
    expect(Buffer.compare(page(b, 2), page(a, 5))).toBe(0);
    expect(flagsOf(a, 1)).toBe(GTF.permit_access | GTF.readonly | GTF.sub_page);
  });

  it('7.6 rules 3-4: a failed op copies nothing and drops the pins it took; the other ops of the batch are done', async () => {
    const a = await guest({ memPages: 8 });
    const b = await guest({ memPages: 8 });
    pattern(a, 1, 7);
    a.table.publish(1, b.domid, 1, false);
    a.table.publish(2, b.domid, 2, true);
    const status = await copy(b, [
      // The source pins a's ref 1, then the destination (a read-only grant) fails.
      { source: side(a.domid, 1), dest: side(a.domid, 2), len: 64, flags: GNTCOPY.source_gref | GNTCOPY.dest_gref },
      { source: side(a.domid, 1), dest: side(b.domid, 3), len: 64, flags: GNTCOPY.source_gref },
    ]);
    expect(status).toEqual([GNTST.permission_denied, GNTST.okay]);
    expect(page(a, 2).every((x) => x === 0), 'the failed op copied nothing').toBe(true);
    expect(Buffer.compare(page(b, 3).subarray(0, 64), page(a, 1).subarray(0, 64))).toBe(0);
    expect([flagsOf(a, 1), flagsOf(a, 2)]).toEqual([GTF.permit_access, GTF.permit_access | GTF.readonly]);
    expect(a.table.endAccess(1)).toBe('ended');
  });

  it('7.6 rules 2-3: a copy through a mapped entry keeps the mapping\'s pins and bits, and counts against the pin limit (GNTST_no_space)', async () => {
    const a = await guest({ memPages: 8 });
    const b = await guest({ memPages: 8 });
    a.table.publish(1, b.domid, 2, false);
    const ro = await mapRefs(b, a.domid, GNTMAP.host_map | GNTMAP.readonly, [1]);
    b.ram.fill(7, 0, 16);
    expect(await copy(b, [{ source: side(b.domid, 0), dest: side(a.domid, 1), len: 16, flags: GNTCOPY.dest_gref }])).toEqual([GNTST.okay]);
    expect(Array.from(page(a, 2).subarray(0, 17))).toEqual([...new Array<number>(16).fill(7), 0]);
    expect(flagsOf(a, 1)).toBe(GTF.permit_access | GTF.reading);
    // 127 read-only pins: a copy reading the entry would be the 128th.
    const more = await mapRefs(b, a.domid, GNTMAP.host_map | GNTMAP.readonly, new Array<number>(MAX_PIN_COUNT - 1).fill(1));
    expect(more.status.every((s) => s === GNTST.okay)).toBe(true);
    expect(await copy(b, [{ source: side(a.domid, 1), dest: side(b.domid, 1), len: 16, flags: GNTCOPY.source_gref }])).toEqual([GNTST.no_space]);
    // The writable counter is separate: a copy into the entry still works.
    expect(await copy(b, [{ source: side(b.domid, 0), dest: side(a.domid, 1, 16), len: 16, flags: GNTCOPY.dest_gref }])).toEqual([GNTST.okay]);
    await unmapAll(b, [...ro.handle, ...more.handle.filter((h) => h !== INVALID_GRANT_HANDLE)]);
    expect(flagsOf(a, 1)).toBe(GTF.permit_access);
  });
}));

describe('SPEC 7.3 table size', () => {
  it('7.3 rule 1, 12 DOMAIN_CREATE: a table starts with min(4, maxGrantFrames) frames; GNTTAB_QUERY_SIZE gives them with the limit (default 64)', async () => {
    const dflt = await hv.guest();
    expect(dflt.maxGrantFrames).toBe(64);
    expect(await dflt.client.call('GNTTAB_QUERY_SIZE', {})).toEqual({ nrFrames: 4, maxFrames: 64 });
    const small = await hv.guest({ maxGrantFrames: 2 });
    expect(small.maxGrantFrames).toBe(2);
    expect(await small.client.call('GNTTAB_QUERY_SIZE', {})).toEqual({ nrFrames: 2, maxFrames: 2 });
    const b = await hv.guest();
    small.table.publish(1023, b.domid, 1, true); // the last entry of the file: 1024 is the first ref beyond the table
    const m = await b.client.call<{ status: number[]; handle: number[] }>('GNTTAB_MAP_GRANT_REF', { dom: small.domid, flags: GNTMAP.host_map | GNTMAP.readonly, refs: [1023, 1024] });
    expect(m.status).toEqual([GNTST.okay, GNTST.bad_gntref]);
    await unmapAll(b, [m.handle[0]!]);
  });

  it('7.3 rules 2-3, 9.4: GNTTAB_SETUP_TABLE grows the table (never shrinks) up to maxGrantFrames, ERR_LIMIT above; refs beyond it grant nothing until it grows, and HV_STATS counts only the frames in use', async () => {
    const a = await hv.guest({ maxGrantFrames: 8 });
    const b = await hv.guest();
    a.table.publish(2048, b.domid, 1, false); // frame 4 of the table: not in use yet
    a.table.publish(3000, b.domid, 2, false); // frame 5
    const map = (refs: number[]) => b.client.call<{ status: number[]; handle: number[] }>('GNTTAB_MAP_GRANT_REF', { dom: a.domid, flags: GNTMAP.host_map, refs });
    expect((await map([2048, 3000])).status).toEqual([GNTST.bad_gntref, GNTST.bad_gntref]);
    expect(await hv.statsOf(a.domid)).toMatchObject({ grantsInUse: 0 });
    expect(await a.client.call('GNTTAB_SETUP_TABLE', { nrFrames: 5 })).toEqual({ nrFrames: 5, maxFrames: 8 });
    expect(await a.client.call('GNTTAB_SETUP_TABLE', { nrFrames: 2 })).toEqual({ nrFrames: 5, maxFrames: 8 });
    expect(await a.client.call('GNTTAB_QUERY_SIZE', {})).toEqual({ nrFrames: 5, maxFrames: 8 });
    expect(await hv.statsOf(a.domid)).toMatchObject({ grantsInUse: 1 });
    const m = await map([2048, 3000]);
    expect(m.status).toEqual([GNTST.okay, GNTST.bad_gntref]);
    const over = await a.client.refused('GNTTAB_SETUP_TABLE', { nrFrames: 9 });
    expect(over.body.code).toBe('ERR_LIMIT');
    expect(await a.client.call('GNTTAB_QUERY_SIZE', {})).toEqual({ nrFrames: 5, maxFrames: 8 });
    expect(await a.client.call('GNTTAB_SETUP_TABLE', { nrFrames: 8 })).toEqual({ nrFrames: 8, maxFrames: 8 });
    expect(await hv.statsOf(a.domid)).toMatchObject({ grantsInUse: 2, busyGrants: 1 });
    const m2 = await map([3000, 4095]);
    expect(m2.status).toEqual([GNTST.okay, GNTST.permission_denied]);
    await unmapAll(b, [m.handle[0]!, m2.handle[0]!]);
  });
});
