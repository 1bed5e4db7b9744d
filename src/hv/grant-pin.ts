/**
 * Pinning and unpinning one grant entry: the part of Xen's map_grant_ref /
 * unmap_common / acquire_grant_for_copy that touches the granter's table.
 * Shared by GNTTAB_MAP_GRANT_REF (pins held until unmap) and GNTTAB_COPY
 * (pins held for the duration of one copy).
 *
 * Hot path: no allocation. acquireGrant returns the frame (>= 0) on success
 * or a GNTST_* value (< 0); frames fit easily (< MAX_MEM_PAGES).
 */
import { GNTST, GTF, GNTTAB_NR_RESERVED_ENTRIES, MAX_PIN_COUNT } from '../../protocol/index.ts';
import type { Domain } from './domain.ts';

/** Compare-exchange attempts before an entry that keeps changing is "unstable" (Xen: 5). */
export const CAS_ATTEMPTS = 5;

const BUSY = GTF.reading | GTF.writing;
/** A mappable entry has type permit_access and no GTF_sub_page (Xen adds sub_page to the type mask for maps only). */
const MAP_TYPE_MASK = GTF.type_mask | GTF.sub_page;
/** A copy may use a GTF_sub_page ("copy-only") entry: only its type must be permit_access. */
const COPY_TYPE_MASK = GTF.type_mask;

/**
 * Sets busy `bits` in word 0 of entry `ref`, validating each copy of the
 * word it read (never the live memory after the check, XSA-155): type
 * permit_access (without sub_page for a mapping: `typeMask`), grantee
 * `domid`, and no GTF_readonly for a writable use. The compare-exchange succeeds only against the very copy
 * that was validated. If the word changed underneath, the new copy is
 * validated again, at most CAS_ATTEMPTS times, then GNTST_general_error
 * ("unstable", as Xen).
 */
function setBusy(words: Int32Array, ref: number, domid: number, bits: number, writable: boolean, typeMask: number): number {
  const at = ref * 2;
  // A plain read is enough for the first copy: it is only a guess that the compare-exchange below
  // confirms atomically (an aligned 32-bit read never tears). Each Atomics call costs a builtin
  // call (tens of ns): the map loop keeps the one that matters, the compare-exchange.
  let word = words[at]!;
  for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
    if ((word & typeMask) !== GTF.permit_access || word >>> 16 !== domid) return GNTST.permission_denied;
    if (writable && (word & GTF.readonly) !== 0) return GNTST.permission_denied;
    const seen = Atomics.compareExchange(words, at, word, word | bits);
    if (seen === word) return GNTST.okay;
    word = seen;
  }
  return GNTST.general_error;
}

/**
 * Pins entry `ref` of `granter` for domain `domid`, read-only or writable,
 * for a mapping or (`forCopy`) for the duration of one GNTTAB_COPY op, which
 * may use a GTF_sub_page (copy-only) entry (SPEC.md 7.1, 7.6).
 *
 * Order (each step stops at its first failure):
 *  1. ref in [1, nrFrames*512), else GNTST_bad_gntref (ref 0 is reserved).
 *  2. Entry already pinned: the grantee recorded at first pin must be `domid`
 *     (GNTST_permission_denied); the counter this use increments must be
 *     below MAX_PIN_COUNT (GNTST_no_space); a first writable pin re-validates
 *     the shared entry and sets GTF_writing (step 3 rules). The frame is the
 *     recorded one; the shared entry's frame is not read again.
 *  3. Entry not pinned: set GTF_reading (and GTF_writing if writable) by
 *     compare-exchange against a validated copy of word 0 (see setBusy);
 *     only then read the frame, once: the granter can no longer end access,
 *     so the frame it names is the one that stays mapped. frame >= memPages:
 *     undo the busy bits, GNTST_bad_page.
 *  4. Increment the pin counter.
 */
export function acquireGrant(granter: Domain, ref: number, domid: number, writable: boolean, forCopy = false): number {
  const typeMask = forCopy ? COPY_TYPE_MASK : MAP_TYPE_MASK;
  if (ref < GNTTAB_NR_RESERVED_ENTRIES || ref >= granter.nrEntries) return GNTST.bad_gntref;
  const act = granter.active;
  const pinR = act.pinR[ref]!;
  const pinW = act.pinW[ref]!;
  if ((pinR | pinW) !== 0) {
    if (act.domid[ref] !== domid) return GNTST.permission_denied;
    if (writable) {
      if (pinW >= MAX_PIN_COUNT) return GNTST.no_space;
      if (pinW === 0) {
        const st = setBusy(granter.words, ref, domid, BUSY, true, typeMask);
        if (st !== GNTST.okay) return st;
      }
      act.pinW[ref] = pinW + 1;
    } else {
      if (pinR >= MAX_PIN_COUNT) return GNTST.no_space;
      act.pinR[ref] = pinR + 1;
    }
    return act.frame[ref]!;
  }
  const bits = writable ? BUSY : GTF.reading;
  const st = setBusy(granter.words, ref, domid, bits, writable, typeMask);
  if (st !== GNTST.okay) return st;
  // Read once, after the compare-exchange (a full barrier that no later read is moved above):
  // the granter wrote the frame before the flags that compare-exchange saw (SPEC 7.2).
  const frame = granter.words[ref * 2 + 1]! >>> 0;
  if (frame >= granter.memPages) {
    granter.table.clearFlags(ref, bits);
    return GNTST.bad_page;
  }
  act.frame[ref] = frame;
  act.domid[ref] = domid;
  if (writable) act.pinW[ref] = 1;
  else act.pinR[ref] = 1;
  return frame;
}

/**
 * Drops one pin of entry `ref` taken by acquireGrant with the same
 * `writable`. Busy bits are cleared only when the last pin of that kind is
 * gone (XSA-230): GTF_writing when no writable pin remains, GTF_reading
 * when no pin at all remains. Clearing uses an atomic AND of just those
 * bits, so flags the granter changed meanwhile are kept.
 */
export function releaseGrant(granter: Domain, ref: number, writable: boolean): void {
  const act = granter.active;
  let pinR = act.pinR[ref]!;
  let pinW = act.pinW[ref]!;
  if (writable) {
    if (pinW === 0) return; // never happens: pins come only from acquireGrant
    act.pinW[ref] = --pinW;
  } else {
    if (pinR === 0) return;
    act.pinR[ref] = --pinR;
  }
  if ((pinR | pinW) === 0) granter.table.clearFlags(ref, BUSY);
  else if (writable && pinW === 0) granter.table.clearFlags(ref, GTF.writing);
}
