/**
 * Conformance, SPEC.md 7.1, 7.2, 7.4 and 7.5: batched grant map and unmap.
 *
 * The granting domain is the test itself, writing entries into its
 * grant-table file in SPEC 7.2's order (GrantTableView.publish: domid and
 * frame, then flags) and ending access with one compare-exchange that fails
 * while the entry is busy (GrantTableView.endAccess). What the backend does
 * is checked through the reply (status, handle, frame, ramPath), the busy
 * bits it sets in the granter's table file, HV_STATS, and the pages the
 * grantee maps from ramPath at the frames the reply names.
 */
import { describe, expect, it } from 'vitest';
import { GNTMAP, GNTST, GTF, INVALID_GRANT_HANDLE, MAX_PIN_COUNT, PAGE_SIZE } from '../../protocol/index.ts';
import { useBackend, type Guest, type GuestOptions } from './support/harness.ts';

const hv = useBackend();

const RW = GNTMAP.host_map;
const RO = GNTMAP.host_map | GNTMAP.readonly;
const BUSY = GTF.reading | GTF.writing;

interface MapReply { status: number[]; handle: number[]; frame: number[]; ramPath: string }

/**
 * GNTTAB_MAP_GRANT_REF in the connection's version: arrays in v1, packed
 * arrays in v2 (SPEC 4.1, 15), read back as arrays so that every rule below
 * is checked the same way over both encodings.
 */
async function map(g: Guest, dom: number, refs: number[], flags = RW): Promise<MapReply> {
  if (g.client.version < 2) return g.client.call<MapReply>('GNTTAB_MAP_GRANT_REF', { dom, flags, refs });
  const r = await g.client.call<{ status: Int16Array; handle: Uint32Array; frame: Uint32Array; ramPath: string }>(
    'GNTTAB_MAP_GRANT_REF', { dom, flags, refs: Uint32Array.from(refs) });
  expect([r.status, r.handle, r.frame].map((x) => x.constructor)).toEqual([Int16Array, Uint32Array, Uint32Array]);
  return { status: Array.from(r.status), handle: Array.from(r.handle), frame: Array.from(r.frame), ramPath: r.ramPath };
}
/** GNTTAB_UNMAP_GRANT_REF in the connection's version (see map). */
async function unmap(g: Guest, handles: number[]): Promise<number[]> {
  if (g.client.version < 2) return (await g.client.call<{ status: number[] }>('GNTTAB_UNMAP_GRANT_REF', { handles })).status;
  return Array.from((await g.client.call<{ status: Int16Array }>('GNTTAB_UNMAP_GRANT_REF', { handles: Uint32Array.from(handles) })).status);
}
function flagsOf(g: Guest, ref: number): number {
  return g.table.loadHeader(ref).flags;
}
/** Stamps page `frame` of `g`'s RAM with a word naming it. */
function stamp(g: Guest, frame: number): void {
  new DataView(g.ram.buffer, g.ram.byteOffset).setUint32(frame * PAGE_SIZE, 0xa0000000 + frame, true);
}
/** Publishes refs first..first+n-1 for `grantee`, ref r granting frame frameOf(r) (SPEC 7.2 order). */
function publish(g: Guest, first: number, n: number, grantee: number, readonly: boolean, frameOf: (r: number) => number = (r) => r): number[] {
  const refs: number[] = [];
  for (let r = first; r < first + n; r++) {
    g.table.publish(r, grantee, frameOf(r), readonly);
    refs.push(r);
  }
  return refs;
}
const fill = <T>(n: number, v: T): T[] => new Array<T>(n).fill(v);
/** Indexes where `xs` differs from `want(i)` (big batches: cheaper than a deep equality with a diff). */
function mismatches<T>(xs: readonly T[], want: (i: number) => T): number[] {
  const out: number[] = [];
  for (let i = 0; i < xs.length; i++) if (xs[i] !== want(i)) out.push(i);
  return out;
}

/**
 * Runs a section's checks over protocol v1 and over v2 (the backend must
 * speak both, SPEC 15): `guest` creates domains whose HELLO offers [1, version].
 */
function overVersions(checks: (guest: (opts?: GuestOptions) => Promise<Guest>, version: number) => void): void {
  describe.each([1, 2])('over protocol v%i', (version) => {
    checks((opts = {}) => hv.guest({ ...opts, maxVersion: version }), version);
  });
}

describe('SPEC 7.4 GNTTAB_MAP_GRANT_REF', () => overVersions((guest, version) => {
  it('7.4 batch rules, 7.1: 1,500 refs in one request: each okay with its own handle (never 0 or 0xFFFFFFFF), the granted frame, the granter\'s ramPath; the pages there are the granted ones', async () => {
    const a = await guest({ memPages: 2048 });
    const b = await guest();
    const refs = publish(a, 1, 1500, b.domid, false, (r) => 2047 - r);
    for (const r of refs) stamp(a, 2047 - r);
    const m = await map(b, a.domid, refs);
    expect(m.ramPath).toBe(a.ramPath);
    expect(m.status).toHaveLength(1500);
    expect(mismatches(m.status, () => GNTST.okay)).toEqual([]);
    expect(mismatches(m.frame, (i) => 2047 - refs[i]!)).toEqual([]);
    expect(new Set(m.handle).size).toBe(1500);
    expect(m.handle.filter((h) => h === 0 || h === INVALID_GRANT_HANDLE)).toEqual([]);
    // The grantee maps frame[i] of ramPath: it sees what the granter wrote there, and writes where the granter reads.
    const view = hv.mapPages(m.ramPath, m.frame, true);
    const words = new DataView(view);
    expect(mismatches(m.frame.map((_, i) => words.getUint32(i * PAGE_SIZE, true)), (i) => 0xa0000000 + m.frame[i]!)).toEqual([]);
    words.setUint32(4, 0x600dcafe, true);
    expect(new DataView(a.ram.buffer).getUint32(m.frame[0]! * PAGE_SIZE + 4, true)).toBe(0x600dcafe);
    hv.unmap(view);
    // Busy bits in the granter's table, counted by HV_STATS; the granter cannot end access.
    expect(mismatches(refs.map((r) => flagsOf(a, r)), () => GTF.permit_access | BUSY)).toEqual([]);
    expect(a.table.endAccess(1)).toBe('busy');
    expect(await hv.statsOf(a.domid)).toMatchObject({ grantsInUse: 1500, busyGrants: 1500 });
    expect(await hv.statsOf(b.domid)).toMatchObject({ mappings: 1500 });
    expect(mismatches(await unmap(b, m.handle), () => GNTST.okay)).toEqual([]);
    expect(mismatches(refs.map((r) => flagsOf(a, r)), () => GTF.permit_access)).toEqual([]);
    expect(a.table.endAccess(1)).toBe('ended');
    expect(await hv.statsOf(a.domid)).toMatchObject({ grantsInUse: 1499, busyGrants: 0 });
    expect(await hv.statsOf(b.domid)).toMatchObject({ mappings: 0 });
  });

  it('7.4 checks 1-3: the whole batch gets one status, in order: bad domain, then no host_map (GNTST_bad_gntref), then device/application/PTE maps (GNTST_general_error); nothing else happens', async () => {
    const a = await guest();
    const b = await guest();
    const idle = await guest({ connect: false });
    publish(a, 1, 2, b.domid, false);
    const cases: [string, number, number, number][] = [
      ['the control domain', 0, RW, GNTST.bad_domain],
      ['an unknown domain', 0x7fef, RW, GNTST.bad_domain],
      ['an unknown domain without host_map', 0x7fef, GNTMAP.readonly, GNTST.bad_domain],
      ['no flags', a.domid, 0, GNTST.bad_gntref],
      ['readonly without host_map', a.domid, GNTMAP.readonly, GNTST.bad_gntref],
      ['device_map without host_map', a.domid, GNTMAP.device_map, GNTST.bad_gntref],
      ['host_map with device_map', a.domid, RW | GNTMAP.device_map, GNTST.general_error],
      ['host_map with application_map', a.domid, RO | GNTMAP.application_map, GNTST.general_error],
      ['host_map with contains_pte', a.domid, RW | GNTMAP.contains_pte, GNTST.general_error],
    ];
    for (const [name, dom, flags, status] of cases) {
      const m = await map(b, dom, [1, 2, 0], flags);
      expect(m.status, name).toEqual(fill(3, status));
      expect(m.handle, name).toEqual(fill(3, INVALID_GRANT_HANDLE));
      expect(m.frame, name).toEqual([0, 0, 0]);
    }
    expect([flagsOf(a, 1), flagsOf(a, 2)]).toEqual([GTF.permit_access, GTF.permit_access]);
    expect(await hv.statsOf(b.domid)).toMatchObject({ mappings: 0 });
    // Other bits (GNTMAP_can_fail, unassigned ones) are ignored; a created domain that never connected is a valid granter.
    const ok = await map(b, a.domid, [1], RW | GNTMAP.can_fail | (1 << 12));
    expect(ok.status).toEqual([GNTST.okay]);
    idle.table.publish(1, b.domid, 3, true);
    const fromIdle = await map(b, idle.domid, [1], RO);
    expect(fromIdle).toMatchObject({ status: [GNTST.okay], frame: [3], ramPath: idle.ramPath });
    // An empty batch is an empty answer.
    expect(await map(b, a.domid, [])).toMatchObject({ status: [], handle: [], frame: [] });
    expect(await unmap(b, [...ok.handle, ...fromIdle.handle])).toEqual([GNTST.okay, GNTST.okay]);
  });

  it('7.4 check 4: a full maptrack gives GNTST_no_device_space before the ref is looked at, and changes nothing; an unmap makes room again', async (ctx) => {
    const a = await guest({ memPages: 16 });
    const b = await guest();
    // The maptrack's size is the backend's (SPEC 7.4 Maptrack rule 1: configurable), so it is not assumed: the
    // granter's whole table (its maxGrantFrames, from DOMAIN_CREATE) offers entries x 127 read-only pins, mapped
    // in batches of the backend's maxBatch (HELLO), until GNTST_no_device_space.
    await a.client.call('GNTTAB_SETUP_TABLE', { nrFrames: a.maxGrantFrames });
    const batch = b.client.maxBatch;
    const unused = a.maxGrantFrames * 512 - 1;
    const entries = unused - 1;
    publish(a, 1, unused, b.domid, true, (r) => r % 16);
    const handles: number[] = [];
    let next = 1;
    let limit = -1;
    while (limit < 0) {
      const refs: number[] = [];
      while (refs.length + MAX_PIN_COUNT <= batch && next <= entries) refs.push(...fill(MAX_PIN_COUNT, next++));
      if (refs.length === 0) break;
      const m = await map(b, a.domid, refs, RO);
      const full = m.status.indexOf(GNTST.no_device_space);
      const okays = full < 0 ? m.status.length : full;
      expect(mismatches(m.status.slice(0, okays), () => GNTST.okay)).toEqual([]);
      handles.push(...m.handle.slice(0, okays));
      if (full >= 0) {
        // Once full, every later entry of the batch gets it too.
        expect(mismatches(m.status.slice(full), () => GNTST.no_device_space)).toEqual([]);
        limit = handles.length;
      }
    }
    if (limit < 0) {
      // Larger than this check can fill with one granter's table: release and say so.
      for (let i = 0; i < handles.length; i += batch) expect(mismatches(await unmap(b, handles.slice(i, i + batch)), () => GNTST.okay)).toEqual([]);
      ctx.skip(`the maptrack holds more than ${handles.length} entries (${entries} refs x ${MAX_PIN_COUNT} pins): not fillable from one granter`);
    }
    expect(await hv.statsOf(b.domid)).toMatchObject({ mappings: limit });
    // Refs that would fail later checks (0, beyond the table) get no_device_space first; an unused entry stays untouched.
    expect(flagsOf(a, unused)).toBe(GTF.permit_access | GTF.readonly);
    expect((await map(b, a.domid, [0, 0xffffffff, unused], RO)).status).toEqual(fill(3, GNTST.no_device_space));
    expect(flagsOf(a, unused)).toBe(GTF.permit_access | GTF.readonly);
    // One unmap, one free entry.
    expect(await unmap(b, [handles.pop()!])).toEqual([GNTST.okay]);
    const again = await map(b, a.domid, [unused, unused], RO);
    expect(again.status).toEqual([GNTST.okay, GNTST.no_device_space]);
    handles.push(again.handle[0]!);
    for (let i = 0; i < handles.length; i += batch) {
      const chunk = handles.slice(i, i + batch);
      expect(mismatches(await unmap(b, chunk), () => GNTST.okay)).toEqual([]);
    }
    expect(await hv.statsOf(a.domid)).toMatchObject({ busyGrants: 0 });
    expect(await hv.statsOf(b.domid)).toMatchObject({ mappings: 0 });
  });

  it('7.1, 7.4 check 5: ref 0 (reserved), refs at or beyond nrFrames x 512 and 0xFFFFFFFF get GNTST_bad_gntref even when an entry is written there', async () => {
    const a = await guest();
    const b = await guest();
    a.table.publish(0, b.domid, 1, false);
    a.table.publish(2048, b.domid, 2, false);
    const m = await map(b, a.domid, [0, 2048, 0xffffffff, 2047], RO);
    // 2047 is in the table but was never written: that is check 7, not 5.
    expect(m.status).toEqual([GNTST.bad_gntref, GNTST.bad_gntref, GNTST.bad_gntref, GNTST.permission_denied]);
    expect([flagsOf(a, 0), flagsOf(a, 2048)]).toEqual([GTF.permit_access, GTF.permit_access]);
  });

  it('7.1, 7.4 check 7.2: an unpinned entry must be permit_access, not sub_page, for the caller, and not read-only for a writable map: else GNTST_permission_denied with nothing set', async () => {
    const a = await guest();
    const b = await guest();
    const c = await guest();
    const write = (ref: number, flags: number, domid = b.domid, frame = ref) => {
      a.table.publish(ref, domid, frame, false); // domid and frame first, flags last (SPEC 7.2)
      a.words[ref * 2] = (domid << 16) | flags;
    };
    write(1, GTF.invalid);
    write(2, GTF.accept_transfer);
    write(3, GTF.transitive);
    write(4, GTF.permit_access | GTF.sub_page);
    write(5, GTF.permit_access, c.domid);
    write(6, GTF.permit_access | GTF.readonly);
    write(7, GTF.permit_access | GTF.PWT | GTF.PCD | GTF.PAT); // cache attributes: ignored
    write(8, GTF.permit_access);
    const before = [1, 2, 3, 4, 5, 6].map((r) => flagsOf(a, r));
    const m = await map(b, a.domid, [1, 2, 3, 4, 5, 6, 7], RW);
    expect(m.status).toEqual([...fill(6, GNTST.permission_denied), GNTST.okay]);
    expect([1, 2, 3, 4, 5, 6].map((r) => flagsOf(a, r))).toEqual(before);
    expect(flagsOf(a, 7)).toBe(GTF.permit_access | GTF.PWT | GTF.PCD | GTF.PAT | BUSY);
    // The read-only grant maps read-only, setting GTF_reading only; a writable grant may be mapped read-only too.
    const ro = await map(b, a.domid, [6, 8], RO);
    expect(ro.status).toEqual([GNTST.okay, GNTST.okay]);
    expect([flagsOf(a, 6), flagsOf(a, 8)]).toEqual([GTF.permit_access | GTF.readonly | GTF.reading, GTF.permit_access | GTF.reading]);
    expect(await unmap(b, [m.handle[6]!, ...ro.handle])).toEqual(fill(3, GNTST.okay));
    expect([flagsOf(a, 6), flagsOf(a, 7), flagsOf(a, 8)]).toEqual([GTF.permit_access | GTF.readonly, GTF.permit_access | GTF.PWT | GTF.PCD | GTF.PAT, GTF.permit_access]);
  });

  it('7.4 check 7.5: a frame outside the granter\'s RAM gives GNTST_bad_page, and the busy bits set meanwhile are cleared again', async () => {
    const a = await guest({ memPages: 32 });
    const b = await guest();
    a.table.publish(1, b.domid, 32, false);
    a.table.publish(2, b.domid, 0xffffffff, true);
    a.table.publish(3, b.domid, 31, false);
    const m = await map(b, a.domid, [1, 2, 3], RO);
    expect(m.status).toEqual([GNTST.bad_page, GNTST.bad_page, GNTST.okay]);
    expect(m.frame).toEqual([0, 0, 31]);
    expect([flagsOf(a, 1), flagsOf(a, 2)]).toEqual([GTF.permit_access, GTF.permit_access | GTF.readonly]);
    expect(a.table.endAccess(1)).toBe('ended');
    expect(await unmap(b, [m.handle[2]!])).toEqual([GNTST.okay]);
  });

  it('7.4 batch rules 1-3 (XSA-361): a mixed batch gives every entry its own status; failed entries have handle 0xFFFFFFFF and frame 0; the okay handles stay valid; a ref twice is two mappings', async () => {
    const a = await guest({ memPages: 64 });
    const b = await guest();
    const c = await guest();
    a.table.publish(1, b.domid, 11, false);
    a.table.publish(2, c.domid, 12, false);
    a.table.publish(3, b.domid, 13, true);
    a.table.publish(4, b.domid, 64, false);
    a.table.publish(5, b.domid, 15, false);
    const refs = [1, 0, 2, 3, 4, 5, 2048, 1, 0xffffffff];
    const m = await map(b, a.domid, refs, RW);
    expect(m.status).toEqual([
      GNTST.okay, GNTST.bad_gntref, GNTST.permission_denied, GNTST.permission_denied, GNTST.bad_page,
      GNTST.okay, GNTST.bad_gntref, GNTST.okay, GNTST.bad_gntref,
    ]);
    const good = [0, 5, 7];
    m.status.forEach((s, i) => {
      if (s === GNTST.okay) return;
      expect([m.handle[i], m.frame[i]], `entry ${i}`).toEqual([INVALID_GRANT_HANDLE, 0]);
    });
    expect(good.map((i) => m.frame[i])).toEqual([11, 15, 11]);
    expect(new Set(good.map((i) => m.handle[i])).size).toBe(3);
    expect([2, 3, 4].map((r) => flagsOf(a, r))).toEqual([GTF.permit_access, GTF.permit_access | GTF.readonly, GTF.permit_access]);
    // Every okay handle is valid: each unmaps once.
    expect(await unmap(b, good.map((i) => m.handle[i]!))).toEqual(fill(3, GNTST.okay));
    expect([flagsOf(a, 1), flagsOf(a, 5)]).toEqual([GTF.permit_access, GTF.permit_access]);
  });

  it('7.4 check 6 (XSA-155): a pinned entry is judged by the backend\'s record: the recorded grantee and frame hold whatever the granter writes meanwhile', async () => {
    const a = await guest({ memPages: 32 });
    const b = await guest();
    const c = await guest();
    stamp(a, 10);
    stamp(a, 20);
    a.table.publish(1, b.domid, 10, false);
    const m1 = await map(b, a.domid, [1], RO);
    expect(m1.frame).toEqual([10]);
    // The granter cannot end access (busy), but it rewrites the frame: the pinned mapping keeps frame 10.
    expect(a.table.endAccess(1)).toBe('busy');
    Atomics.store(a.words, 1 * 2 + 1, 20);
    const m2 = await map(b, a.domid, [1], RO);
    expect(m2).toMatchObject({ status: [GNTST.okay], frame: [10] });
    const view = hv.mapPages(m2.ramPath, m2.frame, false);
    expect(new DataView(view).getUint32(0, true)).toBe(0xa0000000 + 10);
    hv.unmap(view);
    expect(view.byteLength, 'an unmapped view is detached').toBe(0);
    // It rewrites the grantee (keeping the backend's busy bits): the record still names b.
    const word = Atomics.load(a.words, 2);
    expect(a.table.casHeader(1, word, (c.domid << 16) | (word & 0xffff))).toBe(true);
    expect((await map(c, a.domid, [1], RO)).status).toEqual([GNTST.permission_denied]);
    const m3 = await map(b, a.domid, [1], RO);
    expect(m3).toMatchObject({ status: [GNTST.okay], frame: [10] });
    // A first writable pin re-validates the shared entry (7.4 check 6.3): it now names c, so b is refused.
    expect((await map(b, a.domid, [1], RW)).status).toEqual([GNTST.permission_denied]);
    expect(flagsOf(a, 1) & GTF.writing).toBe(0);
    const now = Atomics.load(a.words, 2);
    expect(a.table.casHeader(1, now, (b.domid << 16) | (now & 0xffff))).toBe(true);
    const w = await map(b, a.domid, [1], RW);
    expect(w).toMatchObject({ status: [GNTST.okay], frame: [10] });
    expect(flagsOf(a, 1)).toBe(GTF.permit_access | BUSY);
    expect(await unmap(b, [...m1.handle, ...m2.handle, ...m3.handle, ...w.handle])).toEqual(fill(4, GNTST.okay));
    expect(flagsOf(a, 1)).toBe(GTF.permit_access);
    // Unpinned, the entry is read again: frame 20 now.
    const fresh = await map(b, a.domid, [1], RO);
    expect(fresh.frame).toEqual([20]);
    expect(await unmap(b, fresh.handle)).toEqual([GNTST.okay]);
  });

  it('7.4 pins and busy bits rule 1: at most 127 pins of each kind; the next gets GNTST_no_space, changes nothing, and leaves the other kind usable', async () => {
    const a = await guest();
    const b = await guest();
    a.table.publish(1, b.domid, 1, false);
    const ro = await map(b, a.domid, fill(MAX_PIN_COUNT + 3, 1), RO);
    expect(ro.status).toEqual([...fill(MAX_PIN_COUNT, GNTST.okay), ...fill(3, GNTST.no_space)]);
    expect(flagsOf(a, 1)).toBe(GTF.permit_access | GTF.reading);
    const rw = await map(b, a.domid, fill(MAX_PIN_COUNT + 1, 1), RW);
    expect(rw.status).toEqual([...fill(MAX_PIN_COUNT, GNTST.okay), GNTST.no_space]);
    expect(flagsOf(a, 1)).toBe(GTF.permit_access | BUSY);
    expect(await hv.statsOf(b.domid)).toMatchObject({ mappings: 2 * MAX_PIN_COUNT });
    const handles = [...ro.handle, ...rw.handle].filter((h) => h !== INVALID_GRANT_HANDLE);
    expect(await unmap(b, handles)).toEqual(fill(2 * MAX_PIN_COUNT, GNTST.okay));
    expect(flagsOf(a, 1)).toBe(GTF.permit_access);
  });

  it('7.4 pins and busy bits rules 3-4 (XSA-230), 7.5 rule 2 (XSA-234): GTF_writing goes with the last writable mapping, GTF_reading with the last mapping; the granter\'s own bits are kept; it can end access only then', async () => {
    const a = await guest();
    const b = await guest();
    a.table.publish(1, b.domid, 1, false);
    const w1 = await map(b, a.domid, [1], RW);
    const r1 = await map(b, a.domid, [1], RO);
    const w2 = await map(b, a.domid, [1], RW);
    expect(flagsOf(a, 1)).toBe(GTF.permit_access | BUSY);
    // The granter sets a cache attribute of its own while mapped.
    Atomics.or(a.words, 2, GTF.PAT);
    expect(await unmap(b, w1.handle)).toEqual([GNTST.okay]);
    expect(flagsOf(a, 1)).toBe(GTF.permit_access | GTF.PAT | BUSY);
    // The read-only mapping's unmap drops a read-only pin (the recorded kind), so GTF_writing stays.
    expect(await unmap(b, r1.handle)).toEqual([GNTST.okay]);
    expect(flagsOf(a, 1)).toBe(GTF.permit_access | GTF.PAT | BUSY);
    const r2 = await map(b, a.domid, [1], RO);
    expect(await unmap(b, w2.handle)).toEqual([GNTST.okay]);
    expect(flagsOf(a, 1)).toBe(GTF.permit_access | GTF.PAT | GTF.reading);
    expect(a.table.endAccess(1)).toBe('busy');
    expect(await unmap(b, r2.handle)).toEqual([GNTST.okay]);
    expect(flagsOf(a, 1)).toBe(GTF.permit_access | GTF.PAT);
    expect(a.table.endAccess(1)).toBe('ended');
    expect(flagsOf(a, 1)).toBe(0);
    expect((await map(b, a.domid, [1], RO)).status).toEqual([GNTST.permission_denied]);
  });
}));

describe('SPEC 7.5 GNTTAB_UNMAP_GRANT_REF', () => overVersions((guest) => {
  it('7.4 maptrack rules 2-3, 7.5 rule 1: never-issued, already unmapped, stale (after the entry was reused) and another domain\'s handles get GNTST_bad_handle and change nothing; the others in the batch are unmapped', async () => {
    const a = await guest();
    const b = await guest();
    const c = await guest();
    publish(a, 1, 3, b.domid, false);
    expect(await unmap(b, [0, 1, 0x100000, 0xfffff, 12345678, INVALID_GRANT_HANDLE])).toEqual(fill(6, GNTST.bad_handle));
    const m = await map(b, a.domid, [1, 2]);
    // Another domain's handle.
    expect(await unmap(c, m.handle)).toEqual([GNTST.bad_handle, GNTST.bad_handle]);
    expect([flagsOf(a, 1), flagsOf(a, 2)]).toEqual([GTF.permit_access | BUSY, GTF.permit_access | BUSY]);
    // A batch with a bad handle in the middle.
    expect(await unmap(b, [m.handle[0]!, 77, m.handle[0]!])).toEqual([GNTST.okay, GNTST.bad_handle, GNTST.bad_handle]);
    expect(flagsOf(a, 1)).toBe(GTF.permit_access);
    // Reuse: new mappings get new handles; the old one stays stale and touches none of them.
    const stale = m.handle[0]!;
    const again = await map(b, a.domid, [1, 3]);
    expect(again.status).toEqual([GNTST.okay, GNTST.okay]);
    expect(again.handle).not.toContain(stale);
    expect(await unmap(b, [stale])).toEqual([GNTST.bad_handle]);
    expect([flagsOf(a, 1), flagsOf(a, 3)]).toEqual([GTF.permit_access | BUSY, GTF.permit_access | BUSY]);
    expect(await unmap(b, [m.handle[1]!, ...again.handle])).toEqual(fill(3, GNTST.okay));
    expect(await hv.statsOf(b.domid)).toMatchObject({ mappings: 0 });
  });
}));
