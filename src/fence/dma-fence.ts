/**
 * dma_fence: a one-shot completion event with Linux semantics.
 *
 * As Linux's include/linux/dma-fence.h and drivers/dma-buf/dma-fence.c. A fence belongs to a context (a timeline) and
 * carries a seqno; fences of one context are totally ordered. It goes from
 * pending to signalled exactly once, optionally with an error set beforehand,
 * and runs its callbacks synchronously, in the order they were added.
 *
 * JavaScript runs one task at a time, so every method here is atomic in the
 * way Linux makes it atomic with `fence->lock`.
 */
import { FenceMachine, FenceState } from '../../protocol/machines/fence.ts';
import { armTimeout, ktimeGetNs, MAX_SCHEDULE_TIMEOUT, nowMs, remainingMs } from './clock.ts';
import { EDEADLK, EINVAL, ENOENT, ERESTARTSYS, isErrno } from './errno.ts';
import { isSeqnoLater } from './fence-context.ts';

/**
 * Driver hooks of a fence (struct dma_fence_ops). Containers, sw_sync points
 * and future cross-VM proxy fences each supply one, typed on their own class.
 */
export interface DmaFenceOps<F extends DmaFence = DmaFence> {
  /** Name of the driver that created the fence (sync_fence_info.driver_name). */
  getDriverName(fence: F): string;
  /** Name of the fence's timeline (sync_fence_info.obj_name). */
  getTimelineName(fence: F): string;
  /**
   * Called at most once, on the first add-callback, wait or enableSwSignaling.
   * Return false if the fence has already passed (it is then signalled at once);
   * an error may be set first, but only when returning false. Optional: without
   * it the driver must always have signalling enabled.
   */
  enableSignaling?(fence: F): boolean;
  /** Poll the hardware: return true if the fence has passed (it is then signalled). */
  signaled?(fence: F): boolean;
  /** Deadline hint (CLOCK_MONOTONIC ns), only passed on while the fence is pending. */
  setDeadline?(fence: F, deadlineNs: bigint): void;
  /** Last reference dropped; see {@link DmaFence.release}. */
  release?(fence: F): void;
  /**
   * True for container fences (dma_fence_array, dma_fence_chain). Containers
   * must not nest and must not be added to a reservation object
   * (dma_fence_is_container).
   */
  readonly container?: boolean;
}

/** Construction options of a {@link DmaFence}. */
export interface DmaFenceOptions {
  /**
   * Compare seqnos as plain 64-bit numbers (DMA_FENCE_FLAG_SEQNO64_BIT /
   * ops->use_64bit_seqno) instead of with 32-bit wraparound. Chains set it.
   */
  seqno64?: boolean;
}

/** A fence callback function: receives the fence that signalled and its callback handle. */
export type DmaFenceFunc = (fence: DmaFence, cb: DmaFenceCb) => void;

// Which fence a callback is queued on. A callback may sit on one fence at a
// time; the map lets removeCallback answer "was it still queued here".
const queuedOn = new WeakMap<DmaFenceCb, DmaFence>();

/**
 * A callback handle (struct dma_fence_cb). The same handle can be re-added
 * after it has run or been removed, which is how chains re-arm.
 */
export class DmaFenceCb {
  /** The function run when the fence signals. */
  readonly func: DmaFenceFunc;

  /** @param func run synchronously from the signalling call */
  constructor(func: DmaFenceFunc) {
    this.func = func;
  }

  /** True while this handle is queued on some fence and has not run. */
  get queued(): boolean {
    return queuedOn.has(this);
  }
}

function checkId(what: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`DmaFence: ${what} must be a non-negative safe integer, got ${value}`);
  }
}

/** A fence (struct dma_fence). See the module comment for the model. */
export class DmaFence {
  /** Driver hooks. */
  readonly ops: DmaFenceOps;
  /** Fence context (timeline id), from allocateFenceContexts. */
  readonly context: number;
  /** Position on the context's timeline. */
  readonly seqno: number;
  /** Whether seqnos compare as 64-bit (no wraparound). */
  readonly seqno64: boolean;

  #error = 0;
  /** pending or signalled (SPEC.md 11A.4); changes only through FenceMachine's table. */
  #state: FenceState = FenceState.Pending;
  #signalingEnabled = false;
  #released = false;
  #timestamp: bigint | undefined;
  // A Set keeps insertion order, which is the order callbacks must run in.
  #callbacks = new Set<DmaFenceCb>();

  /** The SIGNALED bit. */
  get #isSignalled(): boolean {
    return this.#state === FenceState.Signalled;
  }

  /**
   * dma_fence_init.
   * @param ops driver hooks
   * @param context fence context
   * @param seqno sequence number within the context
   * @param options see {@link DmaFenceOptions}
   */
  constructor(ops: DmaFenceOps, context: number, seqno: number, options: DmaFenceOptions = {}) {
    checkId('context', context);
    checkId('seqno', seqno);
    this.ops = ops;
    this.context = context;
    this.seqno = seqno;
    this.seqno64 = options.seqno64 ?? false;
  }

  /** Driver name from the ops. */
  get driverName(): string {
    return this.ops.getDriverName(this);
  }

  /** Timeline name from the ops. */
  get timelineName(): string {
    return this.ops.getTimelineName(this);
  }

  /** The error recorded with setError (0 if none). Only meaningful once signalled; see getStatus. */
  get error(): number {
    return this.#error;
  }

  /** Signal time in CLOCK_MONOTONIC ns, or undefined while pending. */
  get timestamp(): bigint | undefined {
    return this.#timestamp;
  }

  /** True once signalling has been enabled (ENABLE_SIGNAL_BIT). */
  get signalingEnabled(): boolean {
    return this.#signalingEnabled;
  }

  /** Number of callbacks still queued (diagnostics). */
  get pendingCallbacks(): number {
    return this.#callbacks.size;
  }

  /** The SIGNALED bit only, without polling the driver (dma_fence_test_signaled_flag). */
  testSignaledFlag(): boolean {
    return this.#isSignalled;
  }

  /**
   * dma_fence_is_signaled: the SIGNALED bit, else the driver's `signaled`
   * poll (signalling the fence if it says yes). Does not enable signalling, so
   * a fence without a `signaled` op may never report true until someone
   * waits or adds a callback.
   */
  isSignaled(): boolean {
    if (this.#isSignalled) return true;
    if (this.ops.signaled?.(this) === true) {
      this.signal();
      return true;
    }
    return false;
  }

  /**
   * dma_fence_signal: pending → signalled, recording the time and running the
   * callbacks in the order they were added.
   * @returns 0 on success, {@link EINVAL} if the fence was already signalled
   */
  signal(): number {
    return this.signalTimestamp(ktimeGetNs());
  }

  /**
   * dma_fence_signal_timestamp: as {@link signal} with a given timestamp (ns),
   * e.g. one reported by a peer.
   * @returns 0 on success, {@link EINVAL} if already signalled
   */
  signalTimestamp(timestampNs: bigint): number {
    if (!FenceMachine.allows(this.#state, 'signal')) return EINVAL;
    this.#state = FenceMachine.next(this.#state, 'signal');
    this.#timestamp = timestampNs;
    // Swap the list out first: a callback that re-adds itself here gets
    // -ENOENT, and removeCallback from inside a callback reports "already run".
    const callbacks = this.#callbacks;
    this.#callbacks = new Set();
    for (const cb of callbacks) queuedOn.delete(cb);
    for (const cb of callbacks) {
      try {
        cb.func(this, cb);
      } catch (err) {
        // A callback cannot fail in Linux. Keep signalling the rest and let the
        // error surface as an uncaught exception instead of losing wake-ups.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    return 0;
  }

  /**
   * dma_fence_check_and_signal (Linux 7.0 form of signal).
   * @returns true if the fence had already been signalled
   */
  checkAndSignal(): boolean {
    return this.signal() !== 0;
  }

  /**
   * dma_fence_set_error: record an error to report once the fence signals. It
   * must be set before signalling so every waiter sees it.
   * @param error negative errno, `-MAX_ERRNO <= error < 0`
   * @returns 0, or {@link EINVAL} (Linux WARNs) if already signalled or out of range
   */
  setError(error: number): number {
    if (this.#isSignalled || !isErrno(error)) return EINVAL;
    this.#error = error;
    return 0;
  }

  /**
   * dma_fence_get_status: 0 pending, 1 signalled OK, negative errno if
   * signalled with an error. An error set before signalling stays invisible
   * until the fence signals.
   */
  getStatus(): number {
    if (!this.isSignaled()) return 0;
    return this.#error !== 0 ? this.#error : 1;
  }

  /** dma_fence_enable_sw_signaling: make sure the driver will signal this fence. */
  enableSwSignaling(): void {
    this.#enableSignaling();
  }

  // __dma_fence_enable_signaling: returns true if the fence is still pending.
  #enableSignaling(): boolean {
    const wasSet = this.#signalingEnabled;
    this.#signalingEnabled = true;
    if (this.#isSignalled) return false;
    if (!wasSet && this.ops.enableSignaling !== undefined) {
      if (!this.ops.enableSignaling(this)) {
        this.signal();
        return false;
      }
    }
    return !this.#isSignalled;
  }

  /**
   * dma_fence_add_callback. Enables signalling if needed.
   * @returns 0 if queued; {@link ENOENT} if the fence has already signalled
   *   (the callback is not called); {@link EINVAL} if `cb` is not a handle or is
   *   still queued on a fence (Linux would corrupt its list)
   */
  addCallback(cb: DmaFenceCb): number {
    if (!(cb instanceof DmaFenceCb) || queuedOn.has(cb)) return EINVAL;
    if (this.#isSignalled) return ENOENT;
    if (!this.#enableSignaling()) return ENOENT;
    this.#callbacks.add(cb);
    queuedOn.set(cb, this);
    return 0;
  }

  /**
   * dma_fence_remove_callback.
   * @returns true if the callback was still queued here and is now removed;
   *   false if it already ran (or was never queued on this fence)
   */
  removeCallback(cb: DmaFenceCb): boolean {
    if (queuedOn.get(cb) !== this) return false;
    queuedOn.delete(cb);
    this.#callbacks.delete(cb);
    return true;
  }

  /**
   * dma_fence_wait_timeout with the default wait.
   *
   * @param timeoutMs milliseconds; `Infinity` (MAX_SCHEDULE_TIMEOUT) waits forever
   * @param abort an interruptible wait: aborting resolves {@link ERESTARTSYS}
   * @returns {@link EINVAL} for a negative timeout; 0 on timeout; otherwise the
   *   remaining time (at least 1). An already-signalled fence returns
   *   `timeoutMs`, or 1 when `timeoutMs` is 0. Waiting forever returns
   *   MAX_SCHEDULE_TIMEOUT (Infinity) on success, as Linux does.
   */
  wait(timeoutMs: number = MAX_SCHEDULE_TIMEOUT, abort?: AbortSignal): Promise<number> {
    if (!(timeoutMs >= 0)) return Promise.resolve(EINVAL);
    const ready = timeoutMs === 0 ? 1 : timeoutMs;
    if (this.#isSignalled) return Promise.resolve(ready);
    if (abort?.aborted === true) return Promise.resolve(ERESTARTSYS);
    if (!this.#enableSignaling()) return Promise.resolve(ready);
    if (timeoutMs === 0) return Promise.resolve(0);

    return new Promise<number>((resolve) => {
      const start = nowMs();
      let done = false;
      let cancelTimer = (): void => {};
      const onAbort = (): void => finish(ERESTARTSYS);
      const finish = (ret: number): void => {
        if (done) return;
        done = true;
        cancelTimer();
        abort?.removeEventListener('abort', onAbort);
        this.removeCallback(cb);
        resolve(ret);
      };
      const cb = new DmaFenceCb(() => finish(remainingMs(timeoutMs, start)));
      if (this.addCallback(cb) !== 0) {
        finish(remainingMs(timeoutMs, start));
        return;
      }
      cancelTimer = armTimeout(timeoutMs, () => finish(0));
      abort?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * dma_fence_set_deadline: pass a completion-time hint (CLOCK_MONOTONIC ns)
   * to the driver while the fence is still pending.
   */
  setDeadline(deadlineNs: bigint): void {
    if (this.ops.setDeadline !== undefined && !this.isSignaled()) {
      this.ops.setDeadline(this, deadlineNs);
    }
  }

  /**
   * dma_fence_release: the last reference is gone. A fence that still has
   * callbacks but never signalled would strand its waiters, so, like Linux,
   * it is signalled with {@link EDEADLK}. Idempotent.
   */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    if (!this.#isSignalled && this.#callbacks.size > 0) {
      this.#error = EDEADLK;
      this.signal();
    }
    this.ops.release?.(this);
  }

  /** Debug text: driver, timeline, context and seqno. */
  toString(): string {
    return `${this.driverName}:${this.timelineName}@${this.context}:${this.seqno}`;
  }
}

/** dma_fence_is_container: true for arrays and chains. */
export function isFenceContainer(fence: DmaFence): boolean {
  return fence.ops.container === true;
}

/**
 * dma_fence_is_later: true if `f1` comes after `f2` on their common timeline.
 * Fences of different contexts are unordered: false (Linux WARNs).
 */
export function isLater(f1: DmaFence, f2: DmaFence): boolean {
  if (f1.context !== f2.context) return false;
  return isSeqnoLater(f1.seqno, f2.seqno, f1.seqno64);
}

/** dma_fence_is_later_or_same: {@link isLater}, or the very same fence. */
export function isLaterOrSame(f1: DmaFence, f2: DmaFence): boolean {
  return f1 === f2 || isLater(f1, f2);
}

/**
 * dma_fence_later: the later of two same-context fences, or null if that one
 * has already signalled (nothing left to wait for) or the contexts differ.
 */
export function laterFence(f1: DmaFence, f2: DmaFence): DmaFence | null {
  if (f1.context !== f2.context) return null;
  const later = isLater(f1, f2) ? f1 : f2;
  return later.isSignaled() ? null : later;
}

/** dma_fence_timestamp: the signal time, or now if the time is not recorded yet. */
export function fenceTimestamp(fence: DmaFence): bigint {
  return fence.timestamp ?? ktimeGetNs();
}
