/**
 * The addon's grant loops (native/grant.c through src/hv/grant-native.ts)
 * against the JS reference they replace, on the same inputs: every status
 * of SPEC.md 7.4 and 7.5 per entry, every pin, every maptrack slot and
 * every grant-table word must come out identical. The reference is the
 * per-entry loop grant-map.ts ran before: Maptrack.alloc / lookup / free
 * and acquireGrant / releaseGrant (grant-pin.ts, still the code of
 * GNTTAB_COPY and the death cascade).
 */
import { describe, expect, it } from 'vitest';
import { ENTRIES_PER_FRAME, GNTST, GTF, INVALID_GRANT_HANDLE, MAX_PIN_COUNT, PAGE_SIZE } from '../../protocol/index.ts';
import { DIR_REFS_PER_PAGE } from '../../protocol/messages/dmabuf.ts';
import { GrantTableView } from '../../src/memory/grant-table-view.ts';
import { nativeMem } from '../../src/memory/native.ts';
import { ActiveGrants } from '../../src/hv/active-grants.ts';
import type { Domain } from '../../src/hv/domain.ts';
import { mapEntries, readDirectoryPages, unmapEntries, type MapOutput } from '../../src/hv/grant-native.ts';
import { acquireGrant, releaseGrant } from '../../src/hv/grant-pin.ts';
import { Maptrack } from '../../src/hv/maptrack.ts';
import { prng } from '../../vm-sim/prng.ts';

/** The parts of a Domain the grant loops use. */
interface Dom {
  domid: number;
  nrFrames: number;
  readonly nrEntries: number;
  memPages: number;
  words: Int32Array;
  table: GrantTableView;
  active: ActiveGrants;
  maptrack: Maptrack;
  ram: Uint8Array;
}

function dom(domid: number, frames: number, memPages: number, maptrackLimit: number): Dom {
  const buf = new ArrayBuffer(frames * PAGE_SIZE);
  return {
    domid, nrFrames: frames, memPages,
    get nrEntries() { return this.nrFrames * ENTRIES_PER_FRAME; },
    words: new Int32Array(buf), table: new GrantTableView(buf),
    active: new ActiveGrants(frames * ENTRIES_PER_FRAME), maptrack: new Maptrack(maptrackLimit),
    ram: new Uint8Array(memPages * PAGE_SIZE),
  };
}

/** A deep copy (same table words, pins, maptrack, RAM). */
function cloneDom(d: Dom): Dom {
  const c = dom(d.domid, d.nrFrames, d.memPages, d.maptrack.limit);
  c.words.set(d.words);
  for (const k of ['pinR', 'pinW', 'frame', 'domid'] as const) (c.active[k] as Uint8Array).set(d.active[k]);
  const mt = c.maptrack;
  while (mt.flags.length < d.maptrack.flags.length) mt.grow();
  for (const k of ['granter', 'ref', 'flags', 'gen', 'next', 'state'] as const) (mt[k] as Uint8Array).set(d.maptrack[k]);
  c.ram.set(d.ram);
  return c;
}

const asDomain = (d: Dom) => d as unknown as Domain;

type Arrays = Record<string, Int32Array | Uint32Array | Uint16Array | Uint8Array>;

/** Copies of everything the loops may change. */
function snapshot(doms: Dom[]): Arrays {
  const out: Arrays = {};
  for (const d of doms) {
    const arrays = { words: d.words, pinR: d.active.pinR, pinW: d.active.pinW, frame: d.active.frame, domid: d.active.domid,
      mtGranter: d.maptrack.granter, mtRef: d.maptrack.ref, mtFlags: d.maptrack.flags, mtGen: d.maptrack.gen, mtNext: d.maptrack.next,
      mtState: d.maptrack.state };
    for (const [k, v] of Object.entries(arrays)) out[`d${d.domid}.${k}`] = v.slice();
  }
  return out;
}

/** Asserts both worlds hold the same arrays, naming the first element that differs. */
function expectSame(native: Arrays, reference: Arrays): void {
  expect(Object.keys(native)).toEqual(Object.keys(reference));
  for (const [k, want] of Object.entries(reference)) {
    const got = native[k]!;
    let diff = got.length === want.length ? '' : `${k}: length ${got.length}, reference ${want.length}`;
    for (let i = 0; i < want.length && !diff; i++) if (got[i] !== want[i]) diff = `${k}[${i}]: ${got[i]}, reference ${want[i]}`;
    expect(diff).toBe('');
  }
}

/** The JS map loop grant-map.ts ran per entry before the addon did. */
function mapReference(caller: Dom, granter: Dom, refs: Uint32Array, writable: boolean, out: MapOutput): number {
  let mapped = 0;
  for (let i = 0; i < refs.length; i++) {
    const ref = refs[i]!;
    const r = caller.maptrack.full ? GNTST.no_device_space : acquireGrant(asDomain(granter), ref, caller.domid, writable);
    if (r >= 0) {
      out.status[i] = GNTST.okay;
      out.handle[i] = caller.maptrack.alloc(granter.domid, ref, writable);
      out.frame[i] = r;
      mapped++;
    } else {
      out.status[i] = r;
      out.handle[i] = INVALID_GRANT_HANDLE;
      out.frame[i] = 0;
    }
  }
  return mapped;
}

/** The JS unmap loop grant-map.ts ran per entry. */
function unmapReference(caller: Dom, granters: Map<number, Dom>, handles: Uint32Array, status: Int16Array): void {
  const mt = caller.maptrack;
  for (let i = 0; i < handles.length; i++) {
    const slot = mt.lookup(handles[i]!);
    if (slot < 0) {
      status[i] = GNTST.bad_handle;
      continue;
    }
    releaseGrant(asDomain(granters.get(mt.granterOf(slot))!), mt.refOf(slot), mt.isWritable(slot));
    mt.free(slot);
    status[i] = GNTST.okay;
  }
}

/** grant-map.ts's unmap driver: one native run per stretch of handles of one granter. */
function unmapNative(caller: Dom, granters: Map<number, Dom>, handles: Uint32Array, status: Int16Array): number {
  let runs = 0;
  for (let i = 0; i < handles.length;) {
    const slot = caller.maptrack.lookup(handles[i]!);
    if (slot < 0) {
      status[i++] = GNTST.bad_handle;
      continue;
    }
    i = unmapEntries(asDomain(caller), asDomain(granters.get(caller.maptrack.granterOf(slot))!), handles, i, handles.length, status);
    runs++;
  }
  return runs;
}

const ME = 7;
const OTHER = 9;

/**
 * A granter whose table holds every kind of entry: good ones (read-write and
 * read-only), for another grantee, of every other type, sub_page, frames
 * beyond RAM, and entries already pinned by `ME` (some at MAX_PIN_COUNT) or
 * by another domain.
 */
function world(seed: number, domid: number, frames = 4, memPages = 4096): Dom {
  const rand = prng(seed);
  const g = dom(domid, frames, memPages, 16);
  for (let ref = 1; ref < g.nrEntries; ref++) {
    const kind = Math.floor(rand() * 12);
    const frame = Math.floor(rand() * memPages);
    const ro = rand() < 0.3;
    const flags = (kind === 0 ? GTF.invalid : kind === 1 ? GTF.accept_transfer : kind === 2 ? GTF.transitive : GTF.permit_access)
      | (ro ? GTF.readonly : 0) | (kind === 3 ? GTF.sub_page : 0);
    const grantee = kind === 4 ? OTHER : ME;
    g.words[ref * 2] = GrantTableView.header(flags, grantee);
    g.words[ref * 2 + 1] = kind === 5 ? memPages + Math.floor(rand() * 10) : frame;
    if (kind === 6 || kind === 7) {
      // Pinned earlier (by ME, or by OTHER as the recorded grantee), busy bits set as a pin sets them.
      const w = !ro && rand() < 0.5;
      g.active.pinR[ref] = kind === 7 && rand() < 0.5 ? MAX_PIN_COUNT : 1 + Math.floor(rand() * 3);
      if (w) g.active.pinW[ref] = rand() < 0.3 ? MAX_PIN_COUNT : 1;
      g.active.frame[ref] = frame;
      g.active.domid[ref] = kind === 7 && rand() < 0.3 ? OTHER : grantee;
      g.words[ref * 2] = g.words[ref * 2]! | GTF.reading | (w ? GTF.writing : 0);
    }
  }
  return g;
}

/** refs for a batch: mostly in range, some out of range or reserved, some repeated. */
function batch(rand: () => number, n: number, nrEntries: number): Uint32Array {
  const refs = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const p = rand();
    refs[i] = p < 0.03 ? 0 : p < 0.06 ? nrEntries + Math.floor(rand() * 100) : p < 0.07 ? 0xffffffff : p < 0.2 && i > 0 ? refs[Math.floor(rand() * i)]! : 1 + Math.floor(rand() * (nrEntries - 1));
  }
  return refs;
}

function outputs(n: number): MapOutput {
  return { status: new Int16Array(n).fill(99), handle: new Uint32Array(n).fill(1), frame: new Uint32Array(n).fill(1) };
}

describe('native grant loops against the JS reference', () => {
  it.each([1, 2, 3, 4, 5])('map, unmap and map again give identical statuses, handles, frames, pins, maptrack and table (seed %i)', (seed) => {
    const rand = prng(seed * 1000);
    const refG = [world(seed, 3), world(seed + 50, 4)];
    const natG = refG.map(cloneDom);
    // A maptrack limit below what the batches map, so GNTST_no_device_space shows up.
    const refC = dom(ME, 1, 1, 300);
    const natC = cloneDom(refC);
    const byId = (gs: Dom[]) => new Map(gs.map((g) => [g.domid, g]));
    const seen = new Set<number>();
    for (let round = 0; round < 6; round++) {
      const gi = round % 2;
      const writable = rand() < 0.5;
      const refs = batch(rand, 200 + Math.floor(rand() * 900), refG[gi]!.nrEntries);
      const a = outputs(refs.length);
      const b = outputs(refs.length);
      const mappedRef = mapReference(refC, refG[gi]!, refs, writable, a);
      const mappedNat = mapEntries(asDomain(natC), asDomain(natG[gi]!), refs, 0, refs.length, writable, b);
      expect(b).toEqual(a);
      expect(mappedNat).toBe(mappedRef);
      for (const s of a.status) seen.add(s);
      expectSame(snapshot([natC, ...natG]), snapshot([refC, ...refG]));

      // Unmap a mix: live handles of both granters interleaved, each twice at times, stale and never-issued ones.
      const live = Array.from(refC.maptrack.liveSlots(), (s) => ((refC.maptrack.gen[s]! << 20) | s) >>> 0);
      const handles = new Uint32Array(Math.floor(live.length * 0.6) + 40);
      for (let i = 0; i < handles.length; i++) {
        const p = rand();
        handles[i] = p < 0.05 ? Math.floor(rand() * 0x100000000) : p < 0.1 ? 0 : p < 0.12 ? INVALID_GRANT_HANDLE
          : p < 0.2 && i > 0 ? handles[i - 1]! : live[Math.floor(rand() * live.length)] ?? 0;
      }
      const sa = new Int16Array(handles.length).fill(99);
      const sb = new Int16Array(handles.length).fill(99);
      unmapReference(refC, byId(refG), handles, sa);
      const runs = unmapNative(natC, byId(natG), handles, sb);
      expect(sb).toEqual(sa);
      if (round > 0) expect(runs).toBeGreaterThan(1); // the handles span both granters
      for (const s of sa) seen.add(s);
      expectSame(snapshot([natC, ...natG]), snapshot([refC, ...refG]));
    }
    // The inputs reached every status a map or an unmap can give (a test of the test).
    for (const s of [GNTST.okay, GNTST.bad_gntref, GNTST.permission_denied, GNTST.bad_page, GNTST.no_space, GNTST.no_device_space, GNTST.bad_handle]) {
      expect(seen, `status ${s}`).toContain(s);
    }
  });

  it('maps a slice [start, end) only, and a maptrack grown mid-batch keeps every earlier entry', () => {
    const g = world(11, 2, 4);
    const ref = cloneDom(g);
    const c = dom(ME, 1, 1, 5000);
    const rc = cloneDom(c);
    const refs = new Uint32Array(3000);
    for (let i = 0; i < refs.length; i++) refs[i] = 1 + (i % (g.nrEntries - 1));
    const a = outputs(refs.length);
    const b = outputs(refs.length);
    mapReference(rc, ref, refs.subarray(0, 2500), false, a);
    mapEntries(asDomain(c), asDomain(g), refs, 0, 1200, false, b);
    expect(b.status[1200]).toBe(99); // untouched past end
    mapEntries(asDomain(c), asDomain(g), refs, 1200, 2500, false, b);
    expect(c.maptrack.flags.length).toBeGreaterThan(1024);
    expect(b.status.subarray(0, 2500)).toEqual(a.status.subarray(0, 2500));
    expect(b.handle.subarray(0, 2500)).toEqual(a.handle.subarray(0, 2500));
    expectSame(snapshot([c, g]), snapshot([rc, ref]));
  });

  it('reads directory pages exactly as pin, copy, unpin would, and stops at the first failure', () => {
    for (const seed of [21, 22, 23]) {
      const rand = prng(seed);
      const g = world(seed, 3, 64);
      const ramWords = new Uint32Array(g.ram.buffer);
      for (let i = 0; i < ramWords.length; i++) ramWords[i] = Math.floor(rand() * 0x100000000);
      const ref = cloneDom(g);
      const caller = dom(ME, 1, 1, 16);
      for (let trial = 0; trial < 40; trial++) {
        const refs = batch(rand, 1 + Math.floor(rand() * 12), g.nrEntries);
        const words = new Uint32Array(refs.length * DIR_REFS_PER_PAGE).fill(7);
        const status = new Int16Array(refs.length).fill(99);
        const handled = readDirectoryPages(asDomain(caller), asDomain(g), g.ram, refs, words, status);
        // Reference: acquireGrant (map rules, read-only), copy, releaseGrant; the first failure stops.
        let k = 0;
        for (; k < refs.length; k++) {
          const frame = acquireGrant(asDomain(ref), refs[k]!, ME, false);
          if (frame < 0) {
            expect(status[k], `trial ${trial} page ${k}`).toBe(frame);
            k++;
            break;
          }
          // The copy holds the page's little-endian words (SPEC.md 10.3), read here with a DataView.
          const view = new DataView(ref.ram.buffer, frame * PAGE_SIZE, PAGE_SIZE);
          const page = words.subarray(k * DIR_REFS_PER_PAGE, (k + 1) * DIR_REFS_PER_PAGE);
          let wrong = -1;
          for (let w = 0; w < DIR_REFS_PER_PAGE && wrong < 0; w++) if (page[w] !== view.getUint32(w * 4, true)) wrong = w;
          expect(wrong, `trial ${trial} page ${k}: first wrong word`).toBe(-1);
          releaseGrant(asDomain(ref), refs[k]!, false);
          expect(status[k]).toBe(GNTST.okay);
        }
        expect(handled).toBe(k);
        expectSame(snapshot([g]), snapshot([ref]));
      }
    }
  });

  it('refuses arrays shorter than the ranges and counts it names (never reads or writes past them)', () => {
    const g = world(31, 1, 16);
    const c = dom(ME, 1, 1, 16);
    const act = g.active;
    const mt = c.maptrack;
    const refs = Uint32Array.of(1, 2, 3);
    const out = outputs(3);
    const map = (nrEntries: number, end: number, status = out.status) => nativeMem.grantMap(
      g.words, nrEntries, act.pinR, act.pinW, act.frame, act.domid, g.memPages,
      mt.granter, mt.ref, mt.flags, mt.gen, mt.next, mt.state, g.domid, ME, false, refs, 0, end, status, out.handle, out.frame);
    expect(() => map(g.nrEntries + 1, 3)).toThrow(/shorter than nrEntries/);
    expect(() => map(g.nrEntries, 4)).toThrow(/outside the arrays/);
    expect(() => map(g.nrEntries, 3, new Int16Array(2))).toThrow(/outside the arrays/);
    expect(() => nativeMem.grantReadPages(g.words, g.nrEntries, act.pinR, act.pinW, act.frame, act.domid, g.memPages + 1,
      ME, refs, g.ram, new Uint32Array(3 * DIR_REFS_PER_PAGE), new Int16Array(3))).toThrow(/too short/);
    expect(() => nativeMem.grantReadPages(g.words, g.nrEntries, act.pinR, act.pinW, act.frame, act.domid, g.memPages,
      ME, refs, g.ram, new Uint32Array(2 * DIR_REFS_PER_PAGE), new Int16Array(3))).toThrow(/too short/);
    expect(() => nativeMem.grantReadPages(g.words, g.nrEntries, act.pinR, act.pinW, act.frame, act.domid, g.memPages,
      ME, refs, g.ram, new Uint32Array(3 * DIR_REFS_PER_PAGE), new Int16Array(2))).toThrow(/too short/);
    mt.state[1] = mt.flags.length + 1; // slots used beyond the arrays
    expect(() => map(g.nrEntries, 3)).toThrow(/maptrack state/);
    expect(out.status).toEqual(Int16Array.of(99, 99, 99)); // nothing written by a refused call
  });
});
