/**
 * The per-entry loops of GNTTAB_MAP_GRANT_REF and GNTTAB_UNMAP_GRANT_REF
 * (SPEC.md 7.4, 7.5), run in the addon (native/grant.c) over the backend's
 * own typed arrays: the granter's table words and active entries
 * (active-grants.ts), the caller's maptrack (maptrack.ts) and the output
 * arrays. Per entry the steps, their order and their statuses are those of
 * acquireGrant / releaseGrant (grant-pin.ts) and Maptrack.alloc / lookup /
 * free, which test/hv/grant-native.test.ts runs on the same inputs to
 * compare every result. In JS the same loop cost about 100 ns per entry,
 * most of it in builtin calls (Atomics) and checks the native loop does not
 * need; a 4K first share maps 8,100 entries.
 */
import { nativeMem } from '../memory/native.ts';
import type { Domain } from './domain.ts';

// A worktree whose build/ predates native/grant.c would fail later with "not a function": say why now.
if (typeof nativeMem.grantMap !== 'function' || typeof nativeMem.grantReadPages !== 'function') {
  throw new Error('the native addon in build/ predates native/grant.c: rebuild it (`npm install`, or `npm run install`)');
}

/** Per-entry results of a map batch, in request order. */
export interface MapOutput {
  readonly status: Int16Array;
  readonly handle: Uint32Array;
  readonly frame: Uint32Array;
}

/**
 * Maps refs[start, end) of `granter` for `caller` into `out` (statuses,
 * handles, frames), pinning and recording each entry that passes. The
 * maptrack grows here when the native loop stops for a fresh slot. Returns
 * how many entries were mapped.
 */
export function mapEntries(caller: Domain, granter: Domain, refs: Uint32Array, start: number, end: number, writable: boolean, out: MapOutput): number {
  const mt = caller.maptrack;
  const act = granter.active;
  const live0 = mt.live;
  for (let i = start; ;) {
    i = nativeMem.grantMap(
      granter.words, granter.nrEntries, act.pinR, act.pinW, act.frame, act.domid, granter.memPages,
      mt.granter, mt.ref, mt.flags, mt.gen, mt.next, mt.state,
      granter.domid, caller.domid, writable, refs, i, end, out.status, out.handle, out.frame,
    );
    if (i >= end) break;
    const slots = mt.flags.length;
    mt.grow();
    // The native loop stops only for a fresh slot below the limit; a maptrack that cannot grow would spin here.
    if (mt.flags.length === slots) throw new Error(`maptrack of d${caller.domid} cannot grow past ${slots} slots (limit ${mt.limit})`);
  }
  return mt.live - live0;
}

/**
 * Unmaps handles[start, end) of `caller`'s maptrack that belong to
 * `granter`: GNTST_bad_handle for a handle that is not live, else the pin
 * recorded at map time is dropped (XSA-234) and busy bits cleared as
 * releaseGrant does (XSA-230). Stops at the first live handle of another
 * granter. Returns the index reached (the entries unmapped are the drop
 * of `caller.maptrack.live`).
 */
export function unmapEntries(caller: Domain, granter: Domain, handles: Uint32Array, start: number, end: number, status: Int16Array): number {
  const mt = caller.maptrack;
  const act = granter.active;
  return nativeMem.grantUnmap(
    granter.words, granter.nrEntries, act.pinR, act.pinW,
    mt.granter, mt.ref, mt.flags, mt.gen, mt.next, mt.state,
    granter.domid, handles, start, end, status,
  );
}

/**
 * Reads directory pages `refs` of `granter` for `caller` (GNTTAB_MAP_DIRECTORY,
 * SPEC.md 7.7): per ref, in order, a read-only pin with every check of a map
 * entry, a copy of the page from `ram` (the backend's mapping of the
 * granter's RAM, Domain.ram) into `out` (DIR_REFS_PER_PAGE words per page, little-endian
 * as SPEC.md 10.3 lays them out), and the pin dropped as releaseGrant drops
 * it. status[k] is GNTST_okay or the pin's failure; the first failure
 * stops. Returns how many refs were handled (the failed one included).
 */
export function readDirectoryPages(caller: Domain, granter: Domain, ram: Uint8Array, refs: Uint32Array, out: Uint32Array, status: Int16Array): number {
  const act = granter.active;
  return nativeMem.grantReadPages(
    granter.words, granter.nrEntries, act.pinR, act.pinW, act.frame, act.domid, granter.memPages,
    caller.domid, refs, ram, out, status,
  );
}
