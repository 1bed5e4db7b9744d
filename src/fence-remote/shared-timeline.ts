/**
 * A fence timeline that other domains can observe (owner side).
 *
 * Like a sw_sync timeline it is one fence context with a monotonic value,
 * here a 64-bit seqno (at most 2^53-1) with no wraparound. Points are
 * created at a seqno and signal when the timeline advances to or past it.
 * Unlike sw_sync, every advance carries a status: signal(seqno, error)
 * gives `error` to every point it passes, so an owner that wants a single
 * failed point first signals up to the point before it.
 *
 * The signalled state is mirrored into the timeline page (timeline-page.ts)
 * in the protocol's order: for each exported point the advance passes, its
 * slot status; then the seqno; then the local fences signal; then the
 * observers that hold one of those points are notified (the host rings
 * their event channels). Nothing here awaits, so an advance is atomic with
 * respect to every other task of the process.
 */
import { TimelineMachine, TimelineState } from '../../protocol/machines/fence.ts';
import { DmaFence, type DmaFenceOps } from '../fence/dma-fence.ts';
import { isErrno } from '../fence/errno.ts';
import { allocateFenceContexts } from '../fence/fence-context.ts';
import { FENCE_MAX_SEQNO } from '../../protocol/messages/fence.ts';
import { FenceRemoteError } from '../guest/errors.ts';
import { FENCE_ERR_CLOSED } from '../fence/errno.ts';
import { SlotTable, type ReleaseResult } from './slot-table.ts';
import type { TimelinePageWriter } from './timeline-page.ts';
import { firstAtOrAfter } from './seqno-order.ts';

/** Driver name of fences on shared timelines (sync_fence_info.driver_name). */
export const SHARED_FENCE_DRIVER = 'hdmabuf-fence';

/** A point on a {@link SharedTimeline} (owner side). */
export class SharedFence extends DmaFence {
  static readonly #ops: DmaFenceOps<SharedFence> = {
    getDriverName: () => SHARED_FENCE_DRIVER,
    getTimelineName: (f) => f.timeline.name,
    // The owner signals its points explicitly; there is no hardware to arm.
    enableSignaling: () => true,
  };

  /** The timeline the point belongs to. */
  readonly timeline: SharedTimeline;

  /** Use {@link SharedTimeline.createFence}. */
  constructor(timeline: SharedTimeline, seqno: number) {
    super(SharedFence.#ops, timeline.context, seqno, { seqno64: true });
    this.timeline = timeline;
  }
}

/** What exporting a point to an observer yields for its reference. */
export type PointHold = { readonly slot: number } | { readonly status: number };

/** Construction options of a {@link SharedTimeline}. */
export interface SharedTimelineOptions {
  /** Owner-chosen id, unique among the owner's live timelines. */
  readonly id: number;
  /** Name shown as the fences' timeline name. */
  readonly name: string;
  /** The timeline page, initialised by the timeline. */
  readonly page: TimelinePageWriter;
  /** Rings the observers that hold a point an advance just passed. */
  readonly notify: (peers: ReadonlySet<number>) => void;
}

function checkSeqno(seqno: number): void {
  if (!Number.isSafeInteger(seqno) || seqno < 0 || seqno > FENCE_MAX_SEQNO) {
    throw new FenceRemoteError('ERR_BAD_ARGUMENT', `seqno ${seqno} is not an integer in 0..2^53-1`);
  }
}

/** A timeline whose points other domains can observe. */
export class SharedTimeline {
  readonly id: number;
  readonly name: string;
  /** The local fence context of the timeline. */
  readonly context: number;

  #value = 0;
  /** Lifecycle (SPEC.md 11A.3); changes only through its transition table. */
  readonly #lifecycle = TimelineMachine.start();
  // Unsignalled points in seqno order, one per seqno.
  #pending: SharedFence[] = [];
  readonly #slotOf = new Map<SharedFence, number>();
  readonly #slots: SlotTable<SharedFence>;
  readonly #page: TimelinePageWriter;
  readonly #notify: (peers: ReadonlySet<number>) => void;

  constructor(options: SharedTimelineOptions) {
    this.id = options.id;
    this.name = options.name;
    this.context = allocateFenceContexts(1);
    this.#page = options.page;
    this.#notify = options.notify;
    this.#slots = new SlotTable(options.page.slotCount);
    this.#page.init(0);
  }

  /** Last signalled seqno. */
  get value(): number {
    return this.#value;
  }

  get state(): TimelineState {
    return this.#lifecycle.state;
  }

  /** Points created and not yet signalled. */
  get pendingPoints(): number {
    return this.#pending.length;
  }

  /** Error slots assigned now. */
  get slotsUsed(): number {
    return this.#slots.used;
  }

  /** Slot counts held by observers now. */
  get slotHolds(): number {
    return this.#slots.holds;
  }

  /** Observers that hold at least one slot count. */
  holders(): Set<number> {
    return this.#slots.holders();
  }

  /** True if the timeline has reached `seqno`. */
  isPassed(seqno: number): boolean {
    return seqno <= this.#value;
  }

  /**
   * The point at `seqno`: born signalled if the timeline has reached it,
   * otherwise the pending point at that seqno (the same object each time).
   * @throws FenceRemoteError ERR_STATE on a closed timeline, ERR_BAD_ARGUMENT for a bad seqno
   */
  createFence(seqno: number): SharedFence {
    this.#checkLive('create a fence');
    checkSeqno(seqno);
    if (this.isPassed(seqno)) {
      const born = new SharedFence(this, seqno);
      born.signal();
      return born;
    }
    const at = firstAtOrAfter(this.#pending, seqno);
    const existing = this.#pending[at];
    if (existing !== undefined && existing.seqno === seqno) return existing;
    const fence = new SharedFence(this, seqno);
    this.#pending.splice(at, 0, fence);
    return fence;
  }

  /**
   * Advances the timeline to `seqno`, signalling every point it passes with
   * `error` (0 for none). Advancing to the current value does nothing.
   * @returns the number of points signalled
   * @throws FenceRemoteError ERR_BAD_ARGUMENT if `seqno` is below the value or `error` is not 0 or an errno; ERR_STATE if closed
   */
  signal(seqno: number, error = 0): number {
    this.#checkLive('signal');
    checkSeqno(seqno);
    if (error !== 0 && !isErrno(error)) throw new FenceRemoteError('ERR_BAD_ARGUMENT', `error ${error} is not 0 or a negative errno`);
    if (seqno < this.#value) throw new FenceRemoteError('ERR_BAD_ARGUMENT', `timeline ${this.name} is at ${this.#value}; it cannot go back to ${seqno}`);
    if (seqno === this.#value) return 0;
    const n = firstAtOrAfter(this.#pending, seqno + 1);
    const passed = this.#pending.slice(0, n);
    const status = error !== 0 ? error : 1;
    const peers = new Set<number>();
    // 1. Slot statuses, 2. the seqno: an observer that sees the seqno finds the status.
    for (const point of passed) {
      const slot = this.#slotOf.get(point);
      if (slot === undefined) continue;
      this.#page.setSlotStatus(slot, status);
      for (const peer of this.#slots.entry(slot)?.holds.keys() ?? []) peers.add(peer);
    }
    this.#page.publishSeqno(seqno);
    this.#value = seqno;
    this.#pending = this.#pending.slice(n);
    // 3. Local fences (callbacks run here), 4. the observers.
    for (const point of passed) {
      if (error !== 0) point.setError(error);
      point.signal();
    }
    if (peers.size > 0) this.#notify(peers);
    return passed.length;
  }

  /** Advances by `count` (sw_sync's inc). */
  inc(count = 1, error = 0): number {
    return this.signal(this.#value + count, error);
  }

  /**
   * Adds one count of `peer` on the point's slot (assigning one if needed)
   * for a reference about to be exported; an already signalled point needs
   * no slot and yields its status instead. Synchronous, so the status seen
   * here is the one exported.
   * @throws FenceRemoteError ERR_LIMIT when every slot is assigned, ERR_BAD_ARGUMENT for a point of another timeline
   */
  hold(point: SharedFence, peer: number): PointHold {
    if (point.timeline !== this) throw new FenceRemoteError('ERR_BAD_ARGUMENT', `fence ${point.toString()} is not on timeline ${this.name}`);
    if (point.testSignaledFlag()) return { status: point.getStatus() };
    let slot = this.#slotOf.get(point);
    if (slot === undefined) {
      slot = this.#slots.assign(point);
      if (slot < 0) {
        throw new FenceRemoteError('ERR_LIMIT', `timeline ${this.name}: all ${this.#slots.size} error slots hold exported pending points`, { slots: this.#slots.size });
      }
      this.#page.assignSlot(slot, point.seqno);
      this.#slotOf.set(point, slot);
    }
    this.#slots.hold(slot, peer);
    return { slot };
  }

  /** Returns counts of `peer` (FENCE_SLOTS_RELEASE, or a refused export); frees slots nobody holds. */
  release(peer: number, slots: Iterable<number>): ReleaseResult<SharedFence> {
    return this.#afterRelease(this.#slots.release(peer, slots));
  }

  /** Drops every count of `peer` (it died, or the share with it ended). */
  dropPeer(peer: number): ReleaseResult<SharedFence> {
    return this.#afterRelease(this.#slots.dropPeer(peer));
  }

  /**
   * Destroys the timeline: every pending point signals with `status`
   * (default -ENOENT, as closing a sw_sync timeline), which is written into
   * the slots, then the page is marked closed. Idempotent.
   * @returns the number of points that were still pending
   */
  close(status: number = FENCE_ERR_CLOSED): number {
    if (!this.#lifecycle.allows('destroy')) return 0;
    if (!isErrno(status)) throw new FenceRemoteError('ERR_BAD_ARGUMENT', `close status ${status} is not a negative errno`);
    this.#lifecycle.apply('destroy');
    const pending = this.#pending;
    this.#pending = [];
    const peers = new Set<number>();
    for (const point of pending) {
      const slot = this.#slotOf.get(point);
      if (slot === undefined) continue;
      this.#page.setSlotStatus(slot, status);
      for (const peer of this.#slots.entry(slot)?.holds.keys() ?? []) peers.add(peer);
    }
    this.#page.close(status);
    for (const point of pending) {
      point.setError(status);
      point.signal();
    }
    if (peers.size > 0) this.#notify(peers);
    return pending.length;
  }

  #afterRelease(result: ReleaseResult<SharedFence>): ReleaseResult<SharedFence> {
    for (const { slot, point } of result.unheld) {
      this.#page.clearSlot(slot);
      this.#slots.free(slot);
      this.#slotOf.delete(point);
    }
    return result;
  }

  #checkLive(what: string): void {
    if (this.#lifecycle.state !== TimelineState.Live) throw new FenceRemoteError('ERR_STATE', `cannot ${what}: timeline ${this.name} is closed`);
  }

}

/** The shared timeline of a fence, or null if it is not a shared-timeline point. */
export function toSharedFence(fence: DmaFence): SharedFence | null {
  return fence instanceof SharedFence ? fence : null;
}
