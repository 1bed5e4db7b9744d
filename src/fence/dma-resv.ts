/**
 * dma_resv: the reservation object holding a buffer's implicit fences
 * (drivers/dma-buf/dma-resv.c, usage model of Linux v5.19+).
 *
 * Every fence is stored with a usage class, ordered KERNEL < WRITE < READ <
 * BOOKKEEP. A query for one class also returns the stronger (lower) classes.
 * A fence can be promoted by adding it again with a stronger usage but never
 * degraded, and an unsignalled fence is only ever replaced by a later-or-same
 * fence of its own context with an equal or stronger usage: otherwise
 * userspace importing an earlier fence could make the kernel free memory that
 * is still in use (CVE-2022-49935).
 *
 * Locking: every method is synchronous and therefore atomic with respect to
 * other tasks, which is what holding the ww_mutex gives in Linux. Multi-step
 * sequences (export, submit, import) are atomic only if the caller does not
 * await in between. The entry list is copy-on-write, like the RCU-protected
 * list in Linux, so unlocked iterators can notice changes and restart.
 */
import { type DmaFence, isFenceContainer, isLaterOrSame } from './dma-fence.ts';
import { allocateFenceContexts } from './fence-context.ts';
import { EINVAL } from './errno.ts';
import { DmaFenceArray } from './fence-array.ts';

/** Usage classes (enum dma_resv_usage); lower values are stronger. */
export const DmaResvUsage = {
  /** In-kernel memory management (moves, clears): always waited for. */
  KERNEL: 0,
  /** Implicit write synchronisation. */
  WRITE: 1,
  /** Implicit read synchronisation. */
  READ: 2,
  /** No implicit synchronisation (preemption, page tables, explicit sync). */
  BOOKKEEP: 3,
} as const;

/** One of the {@link DmaResvUsage} values. */
export type DmaResvUsage = (typeof DmaResvUsage)[keyof typeof DmaResvUsage];

/**
 * dma_resv_usage_rw: the usage a new access must wait for. A write waits for
 * readers and writers (READ level), a read only for writers (WRITE level).
 */
export function usageRw(write: boolean): DmaResvUsage {
  return write ? DmaResvUsage.READ : DmaResvUsage.WRITE;
}

/** Name of a usage class, for messages. */
export function usageName(usage: DmaResvUsage): string {
  return ['kernel', 'write', 'read', 'bookkeep'][usage] ?? `usage(${usage})`;
}

function checkUsage(usage: number): asserts usage is DmaResvUsage {
  if (!Number.isInteger(usage) || usage < DmaResvUsage.KERNEL || usage > DmaResvUsage.BOOKKEEP) {
    throw new RangeError(`dma_resv: invalid usage ${usage}`);
  }
}

/** A fence and the usage it is stored with. */
export interface DmaResvEntry {
  /** The fence. */
  readonly fence: DmaFence;
  /** Its usage class (dma_resv_iter_usage). */
  readonly usage: DmaResvUsage;
}

/** An entry yielded by the unlocked iterator. */
export interface DmaResvUnlockedEntry extends DmaResvEntry {
  /**
   * dma_resv_iter_is_restarted: true on the first entry of each pass. Code
   * that accumulates results must drop them when it sees a restart.
   */
  readonly restarted: boolean;
}

/** A reservation object (struct dma_resv). */
export class DmaResv {
  // Replaced, never mutated, so a reader holding the old array sees a
  // consistent snapshot (the RCU list in Linux).
  #entries: readonly DmaResvEntry[] = [];
  #generation = 0;

  /** Number of stored entries, signalled ones included. */
  get numFences(): number {
    return this.#entries.length;
  }

  #publish(entries: readonly DmaResvEntry[]): void {
    this.#entries = entries;
    this.#generation++;
  }

  /**
   * dma_resv_add_fence. Replaces the first entry that has signalled, or that
   * has the same context, an equal or weaker usage and is not later than
   * `fence`; otherwise appends. Adding the same fence again with a stronger
   * usage therefore promotes it, and with a weaker usage adds a second entry
   * (no degrade).
   *
   * @throws TypeError for a container: add each leaf fence separately
   */
  addFence(fence: DmaFence, usage: DmaResvUsage): void {
    checkUsage(usage);
    // Linux WARNs; a container here is how the recursive-release overflow was built.
    if (isFenceContainer(fence)) throw new TypeError('dma_resv: add each fence individually, not a container');
    const entries = this.#entries;
    const entry: DmaResvEntry = { fence, usage };
    for (const [i, old] of entries.entries()) {
      const sameTimeline = old.fence.context === fence.context && old.usage >= usage && isLaterOrSame(fence, old.fence);
      if (sameTimeline || old.fence.isSignaled()) {
        const next = [...entries];
        next[i] = entry;
        this.#publish(next);
        return;
      }
    }
    this.#publish([...entries, entry]);
  }

  /**
   * dma_resv_replace_fences: replace every fence of `context` by
   * `replacement` with `usage`. Kernel-only: valid only when the old
   * operations no longer access the buffer once `replacement` completes.
   */
  replaceFences(context: number, replacement: DmaFence, usage: DmaResvUsage): void {
    checkUsage(usage);
    if (isFenceContainer(replacement)) throw new TypeError('dma_resv: replacement must not be a container');
    let changed = false;
    const next = this.#entries.map((old) => {
      if (old.fence.context !== context) return old;
      changed = true;
      return { fence: replacement, usage };
    });
    if (changed) this.#publish(next);
  }

  /**
   * dma_resv_copy_fences: make this object hold the unsignalled fences of
   * `src`, with their usages, dropping its own.
   */
  copyFences(src: DmaResv): void {
    const copied: DmaResvEntry[] = [];
    for (const entry of src.unlockedFences(DmaResvUsage.BOOKKEEP)) {
      if (entry.restarted) copied.length = 0;
      copied.push({ fence: entry.fence, usage: entry.usage });
    }
    this.#publish(copied);
  }

  /**
   * dma_resv_for_each_fence (the locked iterator): every entry with usage
   * `<= usage`, signalled ones included, from a snapshot taken at the start.
   */
  *fences(usage: DmaResvUsage): Generator<DmaResvEntry, void, undefined> {
    checkUsage(usage);
    for (const entry of this.#entries) {
      if (entry.usage <= usage) yield entry;
    }
  }

  /**
   * dma_resv_for_each_fence_unlocked: the unsignalled entries with usage
   * `<= usage`. If the object changes while the caller is between entries,
   * the walk starts over and flags the first entry of the new pass
   * `restarted` (as does the very first entry).
   */
  *unlockedFences(usage: DmaResvUsage): Generator<DmaResvUnlockedEntry, void, undefined> {
    checkUsage(usage);
    let restarted = true;
    for (;;) {
      const generation = this.#generation;
      const entries = this.#entries;
      let changed = false;
      for (const entry of entries) {
        if (this.#generation !== generation) {
          changed = true;
          break;
        }
        // isSignaled may run callbacks that change this object; checked above next time round.
        if (entry.usage > usage || entry.fence.isSignaled()) continue;
        yield { fence: entry.fence, usage: entry.usage, restarted };
        restarted = false;
      }
      if (!changed && this.#generation === generation) return;
      restarted = true;
    }
  }

  /** dma_resv_get_fences: snapshot of the unsignalled fences with usage `<= usage`. */
  getFences(usage: DmaResvUsage): DmaFence[] {
    const fences: DmaFence[] = [];
    for (const entry of this.unlockedFences(usage)) {
      if (entry.restarted) fences.length = 0;
      fences.push(entry.fence);
    }
    return fences;
  }

  /**
   * dma_resv_get_singleton: null if nothing is pending at `usage`, the fence
   * if one is, else a new all-signal array (fresh context, seqno 1). Never add
   * the result back to a reservation object: it may be a container.
   */
  getSingleton(usage: DmaResvUsage): DmaFence | null {
    const fences = this.getFences(usage);
    const [first] = fences;
    if (first === undefined) return null;
    if (fences.length === 1) return first;
    return new DmaFenceArray(fences, allocateFenceContexts(1), 1, false);
  }

  /** dma_resv_test_signaled: true iff no unsignalled fence has usage `<= usage`. */
  testSignaled(usage: DmaResvUsage): boolean {
    return this.unlockedFences(usage).next().done === true;
  }

  /**
   * dma_resv_wait_timeout: wait for each unsignalled fence with usage
   * `<= usage` in turn, passing the remaining time along.
   *
   * As in Linux, a timeout of 0 becomes one tick (1 ms) internally: the
   * result is 1 at once if nothing is pending, otherwise the first pending
   * fence gets up to 1 ms.
   *
   * @param timeoutMs milliseconds, `Infinity` for no limit
   * @param abort interrupts the wait with ERESTARTSYS
   * @returns 0 on timeout, remaining time (>0) when idle, negative errno
   *   ({@link EINVAL} for a negative timeout)
   */
  async waitTimeout(usage: DmaResvUsage, timeoutMs: number, abort?: AbortSignal): Promise<number> {
    checkUsage(usage);
    if (!(timeoutMs >= 0)) return EINVAL;
    let ret = timeoutMs === 0 ? 1 : timeoutMs;
    for (const entry of this.unlockedFences(usage)) {
      ret = await entry.fence.wait(ret, abort);
      if (ret <= 0) return ret;
    }
    return ret;
  }
}
