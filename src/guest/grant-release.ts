/**
 * Revoking a shared buffer safely: end access to all its refs, and scrub and
 * free its frames only once every one of them has really ended.
 *
 * This is the fix for two of the original driver's defects and for XSA-396:
 * refs are never freed while the peer still maps them, and the pages behind
 * them are never reused (or scrubbed under the peer's feet) until then.
 */
import { GuestError } from './errors.ts';
import type { ValueOf } from '../../protocol/state-machine.ts';
import { RefState, type GuestGrantTable } from './grant-table.ts';
import type { PageAllocator } from './page-allocator.ts';

/** Lifecycle of a release. */
export const GrantReleaseState = {
  Pending: 'pending',
  Released: 'released',
} as const;
/** One of the GrantReleaseState states. */
export type GrantReleaseState = ValueOf<typeof GrantReleaseState>;

/** A release in progress. */
export interface GrantRelease {
  /** Refs being revoked. */
  readonly total: number;
  /** Refs still mapped by a peer (0 once released). */
  readonly pending: number;
  readonly state: GrantReleaseState;
  /** Resolves after every ref ended and the frames were scrubbed and freed. */
  readonly done: Promise<void>;
}

/**
 * Ends access to every ref (now, or deferred while a peer maps it) and, once
 * all have ended, scrubs and frees `frames` (if given). Refs that end at once
 * free their entries immediately; the frames wait for the last one.
 */
export function revokeAndFree(grants: GuestGrantTable, refs: ArrayLike<number>, allocator?: PageAllocator, frames?: ArrayLike<number>): GrantRelease {
  // Validate first: a bad ref found halfway would leave a release that never completes.
  for (let i = 0; i < refs.length; i++) {
    if (grants.stateOf(refs[i]!) !== RefState.Granted) {
      throw new GuestError('ERR_BAD_ARGUMENT', `ref ${refs[i]} (index ${i}) is not granted or is already being released`, { index: i, ref: refs[i] });
    }
  }
  // Sorted typed copy, not a Set of numbers: a 4K buffer's 8,100 refs cost 32 KB instead of ~1 MB of heap.
  const sorted = Uint32Array.from(refs).sort();
  for (let i = 1; i < sorted.length; i++) if (sorted[i] === sorted[i - 1]) throw new GuestError('ERR_BAD_ARGUMENT', 'a ref is listed twice');
  let outstanding = refs.length;
  let state: GrantReleaseState = GrantReleaseState.Pending;
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const done = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
  const finish = (): void => {
    try {
      if (allocator && frames && frames.length > 0) allocator.free(frames);
      state = GrantReleaseState.Released;
      resolve();
    } catch (e) {
      reject(e);
    }
  };
  const onEnded = (): void => {
    outstanding--;
    if (outstanding === 0) finish();
  };
  if (outstanding === 0) finish();
  for (let i = 0; i < refs.length; i++) grants.endAccessDeferred(refs[i]!, onEnded);
  return {
    total: refs.length,
    get pending() { return outstanding; },
    get state() { return state; },
    done,
  };
}
