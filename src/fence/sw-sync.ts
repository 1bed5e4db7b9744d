/**
 * sw_sync: the software test timeline (drivers/dma-buf/sw_sync.c).
 *
 * A timeline is a fence context with a 32-bit counter. A point created at a
 * value signals once the counter reaches it (32-bit wraparound compare, so a
 * point more than 2^31 ahead is born signalled). Closing the timeline signals
 * every pending point with -ENOENT, as current kernels do, so nobody waits on
 * a timeline that can no longer advance.
 */
import { DmaFence, type DmaFenceOps } from './dma-fence.ts';
import { EBADF, EINVAL, ENOENT, ErrnoError } from './errno.ts';
import { allocateFenceContexts, isSeqnoLater } from './fence-context.ts';
import { SyncFile, syncFileGetFence } from './sync-file.ts';

const INT_MAX = 0x7fffffff;
const U32_MAX = 0xffffffff;

function checkU32(what: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > U32_MAX) {
    throw new ErrnoError(EINVAL, `sw_sync: ${what} must be a u32, got ${value}`);
  }
}

/** A point on a sw_sync timeline (struct sync_pt). */
export class SwSyncPt extends DmaFence {
  static readonly #ops: DmaFenceOps<SwSyncPt> = {
    getDriverName: () => 'sw_sync',
    getTimelineName: (pt) => pt.timeline.name,
    enableSignaling: () => true,
    signaled: (pt) => pt.timeline.isPassed(pt.seqno),
    setDeadline: (pt, deadlineNs) => pt.#setDeadline(deadlineNs),
  };

  /** The timeline this point belongs to. */
  readonly timeline: SwSyncTimeline;
  #deadlineNs: bigint | undefined;

  /** Use {@link SwSyncTimeline.createPoint}. */
  constructor(timeline: SwSyncTimeline, value: number) {
    super(SwSyncPt.#ops, timeline.context, value);
    this.timeline = timeline;
  }

  /** Earliest deadline set on this point (ns), if any. */
  get deadlineNs(): bigint | undefined {
    return this.#deadlineNs;
  }

  // timeline_fence_set_deadline keeps the earliest.
  #setDeadline(deadlineNs: bigint): void {
    if (this.#deadlineNs === undefined || deadlineNs < this.#deadlineNs) this.#deadlineNs = deadlineNs;
  }
}

/** A sw_sync timeline: what one open() of /sys/kernel/debug/sync/sw_sync creates. */
export class SwSyncTimeline {
  /** The timeline's fence context. */
  readonly context: number;
  /** Timeline name (the task comm in Linux). */
  readonly name: string;

  #value = 0;
  #closed = false;
  // Unsignalled points in signal order: every one is ahead of #value by less
  // than 2^31, so "distance ahead" sorts them even across wraparound.
  #pending: SwSyncPt[] = [];

  /** @param name timeline name shown as the fences' obj_name */
  constructor(name = 'sw_sync') {
    this.context = allocateFenceContexts(1);
    this.name = name;
  }

  /** Current counter value (u32). */
  get value(): number {
    return this.#value;
  }

  /** True after {@link close}. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Number of points still waiting for the counter. */
  get pendingPoints(): number {
    return this.#pending.length;
  }

  /** timeline_fence_signaled: the counter has reached `seqno` (32-bit wrap). */
  isPassed(seqno: number): boolean {
    return !isSeqnoLater(seqno, this.#value, false);
  }

  #checkOpen(op: string): void {
    if (this.#closed) throw new ErrnoError(EBADF, `sw_sync: ${op} on a closed timeline`);
  }

  #ahead(seqno: number): number {
    return (seqno - this.#value) >>> 0;
  }

  /**
   * sync_pt_create: the point at `value`. A point the counter has already
   * reached is born signalled; a pending point with the same value is reused.
   * @throws ErrnoError EBADF on a closed timeline, EINVAL if `value` is not a u32
   */
  createPoint(value: number): SwSyncPt {
    this.#checkOpen('create fence');
    checkU32('value', value);
    if (this.isPassed(value)) {
      const born = new SwSyncPt(this, value);
      born.signal();
      return born;
    }
    const ahead = this.#ahead(value);
    let lo = 0;
    let hi = this.#pending.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const other = this.#pending[mid];
      if (other !== undefined && this.#ahead(other.seqno) < ahead) lo = mid + 1;
      else hi = mid;
    }
    const existing = this.#pending[lo];
    if (existing !== undefined && existing.seqno === value) return existing;
    const pt = new SwSyncPt(this, value);
    this.#pending.splice(lo, 0, pt);
    return pt;
  }

  /**
   * SW_SYNC_IOC_CREATE_FENCE: a sync_file holding the point at `value`.
   * (Linux ignores the request's name; the file name derives from the fence.)
   */
  createFence(value: number): SyncFile {
    return SyncFile.create(this.createPoint(value));
  }

  /**
   * SW_SYNC_IOC_INC: advance the counter by `count` (u32, wrapping) and signal,
   * in seqno order, every point it has reached. Increments above INT_MAX are
   * applied in INT_MAX steps so the wrap compare never skips a point.
   * @throws ErrnoError EBADF on a closed timeline, EINVAL if `count` is not a u32
   */
  inc(count = 1): void {
    this.#checkOpen('inc');
    checkU32('increment', count);
    let left = count;
    while (left > INT_MAX) {
      this.#advance(INT_MAX);
      left -= INT_MAX;
    }
    this.#advance(left);
  }

  // sync_timeline_signal. One point at a time, removed before it signals, so a
  // callback that creates points or increments again sees a consistent list.
  #advance(step: number): void {
    this.#value = (this.#value + step) >>> 0;
    for (;;) {
      const head = this.#pending[0];
      if (head === undefined || !this.isPassed(head.seqno)) return;
      this.#pending.shift();
      head.signal();
    }
  }

  /**
   * Close the timeline fd: every pending point signals with -ENOENT, in seqno
   * order. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const pending = this.#pending;
    this.#pending = [];
    for (const pt of pending) {
      pt.setError(ENOENT);
      pt.signal();
    }
  }

  /**
   * SW_SYNC_GET_DEADLINE: the earliest deadline set on a point of this
   * timeline (via {@link SyncFile.setDeadline}).
   * @throws ErrnoError EINVAL if `file` is not a sync_file of a sw_sync point,
   *   ENOENT if no deadline was set
   */
  getDeadline(file: unknown): bigint {
    const fence = syncFileGetFence(file);
    if (!(fence instanceof SwSyncPt)) throw new ErrnoError(EINVAL, 'SW_SYNC_GET_DEADLINE: not a sw_sync fence');
    const deadline = fence.deadlineNs;
    if (deadline === undefined) throw new ErrnoError(ENOENT, 'SW_SYNC_GET_DEADLINE: no deadline set');
    return deadline;
  }
}
