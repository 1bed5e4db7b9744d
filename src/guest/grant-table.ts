/**
 * The guest side of the grant table (Linux drivers/xen/grant-table.c):
 * allocates grant references, publishes entries in Xen's order, ends access
 * with one atomic end-if-not-busy whose result is always checked (XSA-396),
 * and retries refs that were still mapped (deferred release).
 *
 * A ref goes back to the free list only once its entry really ended: a busy
 * ref stays Granted (endAccess) or moves to Deferred (endAccessDeferred) and
 * is never handed out again while the peer may still touch its page. The page
 * behind it must not be reused either; grant-release.ts frees frames only
 * after all their refs ended.
 *
 * The table grows on demand (GNTTAB_SETUP_TABLE, one round trip per growth)
 * up to the domain's maximum, then fails with ERR_LIMIT.
 */
import { ENTRIES_PER_FRAME, GNTTAB_NR_RESERVED_ENTRIES } from '../../protocol/grant-abi.ts';
import { MAX_DOMID } from '../../protocol/limits.ts';
import { GuestError } from './errors.ts';
import type { ValueOf } from '../../protocol/state-machine.ts';
import type { GrantTableMemory } from './grant-table-file.ts';

/** The one hypercall the guest grant table needs. */
export interface GrantTableHypercalls {
  /** GNTTAB_SETUP_TABLE: grow to at least nrFrames; resolves with the new size. */
  setupTable(nrFrames: number): Promise<{ nrFrames: number; maxFrames: number }>;
}

/** State of a grant reference, one byte per ref. */
export const RefState = {
  /** On the free list. */
  Free: 0,
  /** Entry published; the owner may end access. */
  Granted: 1,
  /** End of access was refused (busy); queued for retry, still not reusable. */
  Deferred: 2,
  /** Never handed out (ref 0). */
  Reserved: 3,
} as const;
/** One of the RefState states. */
export type RefState = (typeof RefState)[keyof typeof RefState];

/** Result of ending access immediately. */
export type EndResult = 'ended' | 'busy';
/** Result of ending access eventually. */
export type DeferredEndResult = 'ended' | 'deferred';

/** Retry timing of deferred releases. */
export interface DeferredRetryOptions {
  /** First retry delay (ms). */
  minDelayMs?: number;
  /** Delay cap (ms); Linux retries every second. */
  maxDelayMs?: number;
}

/** Construction options. */
export interface GuestGrantTableOptions {
  memory: GrantTableMemory;
  hypercalls: GrantTableHypercalls;
  /** Frames set up now (GNTTAB_QUERY_SIZE). */
  nrFrames: number;
  /** The domain's limit. */
  maxFrames: number;
  /** Frames of RAM, to reject grants of frames outside it. */
  memPages?: number;
  retry?: DeferredRetryOptions;
}

/** Counters, for stats and leak checks. */
export interface GrantTableStats {
  nrFrames: number;
  maxFrames: number;
  /** Refs usable now (nrFrames * 512 minus reserved). */
  capacity: number;
  free: number;
  granted: number;
  deferred: number;
  growths: number;
  /** Deferred refs that ended later. */
  deferredEnded: number;
  /** Retry passes over the deferred queue. */
  deferredPasses: number;
}

interface DeferredEntry {
  onEnded: (() => void) | undefined;
  attempts: number;
}

/** Table lifecycle. */
export const GrantTableState = {
  Open: 'open',
  Closed: 'closed',
} as const;
/** One of the GrantTableState states. */
export type GrantTableState = ValueOf<typeof GrantTableState>;

/** A domain's own grant table, guest side. */
export class GuestGrantTable {
  private readonly memory: GrantTableMemory;
  private readonly hypercalls: GrantTableHypercalls;
  private readonly memPages: number | undefined;
  private nrFramesValue: number;
  private maxFramesValue: number;
  /** RefState per ref below capacity. */
  private refState: Uint8Array;
  /** Stack of free refs; the lowest ref is on top. */
  private freeStack: Uint32Array;
  private freeTop = 0;
  private grantedCount = 0;
  private readonly deferred = new Map<number, DeferredEntry>();
  private growthChain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private readonly minDelayMs: number;
  private readonly maxDelayMs: number;
  private delayMs: number;
  private counters = { growths: 0, deferredEnded: 0, deferredPasses: 0 };
  private stateValue: GrantTableState = GrantTableState.Open;

  constructor(options: GuestGrantTableOptions) {
    this.memory = options.memory;
    this.hypercalls = options.hypercalls;
    this.memPages = options.memPages;
    this.nrFramesValue = 0;
    this.maxFramesValue = options.maxFrames;
    this.minDelayMs = options.retry?.minDelayMs ?? 50;
    this.maxDelayMs = options.retry?.maxDelayMs ?? 1000;
    this.delayMs = this.minDelayMs;
    this.refState = new Uint8Array(0);
    this.freeStack = new Uint32Array(0);
    if (this.memory.view.capacity < options.nrFrames * ENTRIES_PER_FRAME) this.memory.grow(options.nrFrames);
    this.addFrames(options.nrFrames);
  }

  /** Lifecycle state. */
  get state(): GrantTableState {
    return this.stateValue;
  }

  /** Frames set up. */
  get nrFrames(): number {
    return this.nrFramesValue;
  }

  /** The domain's limit in frames. */
  get maxFrames(): number {
    return this.maxFramesValue;
  }

  /** Refs whose release was deferred because the peer still mapped them. */
  get pendingDeferred(): number {
    return this.deferred.size;
  }

  /** State of a ref. */
  stateOf(ref: number): RefState {
    return (this.refState[ref] ?? RefState.Free) as RefState;
  }

  /** True if the backend marks the entry mapped (GTF_reading or GTF_writing). */
  isBusy(ref: number): boolean {
    this.checkOwned(ref, 'isBusy');
    return this.memory.view.isBusy(ref);
  }

  /**
   * Grants `domid` access to `frame` (gnttab_grant_foreign_access). Resolves
   * with the ref; grows the table if it is full; ERR_LIMIT at the maximum.
   */
  async grantAccess(domid: number, frame: number, readonly: boolean): Promise<number> {
    const refs = await this.grantAccessMany(domid, [frame], readonly);
    return refs[0]!;
  }

  /**
   * Grants `domid` access to every frame, one ref each, in order. At most one
   * growth round trip; all-or-nothing.
   */
  async grantAccessMany(domid: number, frames: ArrayLike<number>, readonly: boolean): Promise<Uint32Array> {
    this.checkOpen();
    if (!Number.isInteger(domid) || domid < 0 || domid > MAX_DOMID) throw new GuestError('ERR_BAD_ARGUMENT', `domid ${domid} out of range`);
    const n = frames.length;
    if (n === 0) return new Uint32Array(0);
    for (let i = 0; i < n; i++) {
      const f = frames[i]!;
      if (!Number.isInteger(f) || f < 0 || f > 0xffffffff || (this.memPages !== undefined && f >= this.memPages)) {
        throw new GuestError('ERR_BAD_ARGUMENT', `frame ${f} (index ${i}) is outside RAM`, { index: i, frame: f });
      }
    }
    while (this.freeTop < n) await this.grow(n);
    this.checkOpen();
    // The n refs on top of the free stack, lowest first (the stack's order).
    const refs = this.freeStack.slice(this.freeTop - n, this.freeTop).reverse();
    this.freeTop -= n;
    const refState = this.refState;
    for (let i = 0; i < n; i++) refState[refs[i]!] = RefState.Granted;
    this.memory.view.publishMany(refs, domid, frames, readonly);
    this.grantedCount += n;
    return refs;
  }

  /**
   * Ends access now if the entry is not mapped (gnttab_try_end_foreign_access).
   * 'ended': the ref is free again. 'busy': nothing changed; the peer still
   * maps it, the caller must not reuse the page, and may retry or defer.
   */
  endAccess(ref: number): EndResult {
    this.checkOwned(ref, 'endAccess');
    if (this.refState[ref] === RefState.Deferred) return 'busy';
    const result = this.tryEnd(ref);
    if (result === 'ended') this.freeRef(ref);
    return result;
  }

  /**
   * Ends access now, or queues the ref and retries until it ends
   * (gnttab_end_foreign_access). `onEnded` runs once access has really ended
   * (synchronously if it ends now); only then may the page be reused.
   */
  endAccessDeferred(ref: number, onEnded?: () => void): DeferredEndResult {
    this.checkOwned(ref, 'endAccessDeferred');
    if (this.refState[ref] === RefState.Deferred) throw new GuestError('ERR_BAD_ARGUMENT', `ref ${ref} is already pending release`, { ref });
    if (this.tryEnd(ref) === 'ended') {
      this.freeRef(ref);
      onEnded?.();
      return 'ended';
    }
    this.refState[ref] = RefState.Deferred;
    this.deferred.set(ref, { onEnded, attempts: 1 });
    this.delayMs = this.minDelayMs;
    this.schedule();
    return 'deferred';
  }

  /**
   * Retries every deferred ref now (also run by the timer, and by the kernel
   * when a grantee domain dies). Returns how many ended.
   */
  retryDeferred(): number {
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    if (this.stateValue !== GrantTableState.Open || this.deferred.size === 0) return 0;
    this.counters.deferredPasses++;
    const done: Array<(() => void) | undefined> = [];
    for (const [ref, entry] of this.deferred) {
      entry.attempts++;
      if (this.tryEnd(ref) !== 'ended') continue;
      this.deferred.delete(ref);
      this.freeRef(ref);
      done.push(entry.onEnded);
    }
    this.counters.deferredEnded += done.length;
    // Back off while nothing moves; start over as soon as something does.
    this.delayMs = done.length > 0 ? this.minDelayMs : Math.min(this.delayMs * 2, this.maxDelayMs);
    this.schedule();
    for (const cb of done) cb?.();
    return done.length;
  }

  /** Counters and sizes. */
  stats(): GrantTableStats {
    return {
      nrFrames: this.nrFramesValue,
      maxFrames: this.maxFramesValue,
      capacity: this.refState.length - GNTTAB_NR_RESERVED_ENTRIES,
      free: this.freeTop,
      granted: this.grantedCount - this.deferred.size,
      deferred: this.deferred.size,
      ...this.counters,
    };
  }

  /**
   * Stops the retry timer. Refs still deferred stay pinned: their callbacks
   * never run, so their pages are never reused (Linux leaks them the same
   * way). Returns how many were pending.
   */
  close(): number {
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    this.stateValue = GrantTableState.Closed;
    return this.deferred.size;
  }

  /** One atomic end-if-not-busy on the entry; the result is always used. */
  private tryEnd(ref: number): EndResult {
    const result = this.memory.view.endAccess(ref);
    if (result === 'not-granted') {
      // Only this guest writes type bits; a cleared entry means memory corruption or a bug.
      throw new GuestError('ERR_STATE', `grant entry ${ref} was cleared behind the grant table's back`, { ref });
    }
    return result;
  }

  private freeRef(ref: number): void {
    this.refState[ref] = RefState.Free;
    this.freeStack[this.freeTop++] = ref;
    this.grantedCount--;
  }

  private schedule(): void {
    if (this.timer || this.deferred.size === 0 || this.stateValue !== GrantTableState.Open) return;
    this.timer = setTimeout(() => { this.timer = undefined; this.retryDeferred(); }, this.delayMs);
    // Pending releases alone must not keep a process alive.
    this.timer.unref();
  }

  /** Grows so that `needed` refs are free; one GNTTAB_SETUP_TABLE. Growths run one at a time. */
  private grow(needed: number): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.freeTop >= needed) return;
      this.checkOpen();
      const inUse = this.refState.length - this.freeTop;
      const frames = Math.ceil((inUse + needed) / ENTRIES_PER_FRAME);
      if (frames > this.maxFramesValue) {
        throw new GuestError('ERR_LIMIT',
          `grant table full: ${needed} refs wanted, ${this.freeTop} free, and ${frames} frames would exceed the domain's maximum of ${this.maxFramesValue}`,
          { wanted: needed, free: this.freeTop, maxFrames: this.maxFramesValue });
      }
      let reply: { nrFrames: number; maxFrames: number };
      try {
        reply = await this.hypercalls.setupTable(frames);
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code === 'ERR_LIMIT') throw new GuestError('ERR_LIMIT', `grant table cannot grow to ${frames} frames: ${(e as Error).message}`);
        throw e;
      }
      this.checkOpen();
      this.maxFramesValue = reply.maxFrames;
      this.memory.grow(reply.nrFrames);
      this.addFrames(reply.nrFrames);
      this.counters.growths++;
    };
    const p = this.growthChain.then(run);
    this.growthChain = p.catch(() => undefined);
    return p;
  }

  /** Makes refs up to nrFrames * 512 usable. */
  private addFrames(nrFrames: number): void {
    if (nrFrames <= this.nrFramesValue) return;
    const oldCap = this.refState.length;
    const newCap = nrFrames * ENTRIES_PER_FRAME;
    const state = new Uint8Array(newCap);
    state.set(this.refState);
    const stack = new Uint32Array(newCap);
    // New refs go below the existing free ones, highest first, so low refs are handed out first.
    let top = 0;
    for (let ref = newCap - 1; ref >= Math.max(oldCap, GNTTAB_NR_RESERVED_ENTRIES); ref--) stack[top++] = ref;
    stack.set(this.freeStack.subarray(0, this.freeTop), top);
    top += this.freeTop;
    for (let ref = oldCap; ref < Math.min(GNTTAB_NR_RESERVED_ENTRIES, newCap); ref++) state[ref] = RefState.Reserved;
    this.refState = state;
    this.freeStack = stack;
    this.freeTop = top;
    this.nrFramesValue = nrFrames;
  }

  private checkOpen(): void {
    if (this.stateValue !== GrantTableState.Open) throw new GuestError('ERR_STATE', 'grant table is closed');
  }

  private checkOwned(ref: number, what: string): void {
    const s = this.refState[ref];
    if (!Number.isInteger(ref) || s === undefined || s === RefState.Free || s === RefState.Reserved) {
      throw new GuestError('ERR_BAD_ARGUMENT', `${what}: ref ${ref} is not granted`, { ref });
    }
  }
}

