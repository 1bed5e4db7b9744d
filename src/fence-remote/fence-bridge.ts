/**
 * Bridges for local fences that are not on a shared timeline (a sw_sync
 * point, a driver's fence, a fence imported from a third domain): each
 * such fence context gets a shared "bridge" timeline of its own, and each
 * exported fence a point on it that signals, with the fence's status, when
 * the fence does.
 *
 * This relies on the dma_fence contract that fences of one context signal
 * in seqno order: the bridge timeline advances to the highest point that
 * has signalled, and that must not pass a point whose fence is still
 * pending. 32-bit seqnos are unwrapped into the bridge's 64-bit ones by
 * their signed distance from the last one seen.
 */
import { type DmaFence, DmaFenceCb } from '../fence/dma-fence.ts';
import { ENOENT } from '../fence/errno.ts';
import { TimelineState } from '../../protocol/machines/fence.ts';
import type { SharedFence, SharedTimeline } from './shared-timeline.ts';

interface BridgeEntry {
  readonly tl: SharedTimeline;
  lastRaw: number | undefined;
  lastSeqno: number;
  readonly points: WeakMap<DmaFence, SharedFence>;
}

// Bridged 32-bit seqnos start in "epoch 1" so they can move back by up to 2^31 and stay positive.
const EPOCH = 0x1_0000_0000;

/** Bridge timelines, one per foreign fence context. */
export class FenceBridge {
  readonly #byContext = new Map<number, BridgeEntry>();
  readonly #create: (name: string) => SharedTimeline;
  #bridged = 0;

  /** @param create makes a new shared timeline of this domain */
  constructor(create: (name: string) => SharedTimeline) {
    this.#create = create;
  }

  /** Fences bridged so far. */
  get bridged(): number {
    return this.#bridged;
  }

  /** Bridge timelines that are live. */
  timelines(): SharedTimeline[] {
    return [...this.#byContext.values()].map((e) => e.tl).filter((tl) => tl.state === TimelineState.Live);
  }

  /**
   * Bridge timelines with no pending point: nothing waits on them any more,
   * so the caller may destroy them (a later export of the same context makes
   * a new one). They are forgotten here.
   */
  takeIdle(): SharedTimeline[] {
    const idle: SharedTimeline[] = [];
    for (const [context, entry] of this.#byContext) {
      if (entry.tl.state === TimelineState.Live && entry.tl.pendingPoints > 0) continue;
      this.#byContext.delete(context);
      if (entry.tl.state === TimelineState.Live) idle.push(entry.tl);
    }
    return idle;
  }

  /**
   * The bridge point standing for a pending foreign fence (the same point
   * for the same fence). It signals with the fence's status.
   */
  pointFor(fence: DmaFence): SharedFence {
    const entry = this.#entry(fence);
    const existing = entry.points.get(fence);
    if (existing) return existing;
    const seqno = this.#seqnoOf(entry, fence);
    const point = entry.tl.createFence(seqno);
    entry.points.set(fence, point);
    this.#bridged++;
    const forward = (): void => {
      const { tl } = entry;
      if (tl.state !== TimelineState.Live || seqno <= tl.value) return;
      const status = fence.getStatus();
      tl.signal(seqno, status < 0 ? status : 0);
    };
    if (fence.addCallback(new DmaFenceCb(forward)) === ENOENT) forward();
    return point;
  }

  #entry(fence: DmaFence): BridgeEntry {
    let entry = this.#byContext.get(fence.context);
    if (!entry || entry.tl.state !== TimelineState.Live) {
      entry = { tl: this.#create(`bridge:${fence.driverName}:${fence.timelineName}`.slice(0, 32)), lastRaw: undefined, lastSeqno: 0, points: new WeakMap() };
      this.#byContext.set(fence.context, entry);
    }
    return entry;
  }

  #seqnoOf(entry: BridgeEntry, fence: DmaFence): number {
    // 64-bit seqnos map one to one (shifted by one so seqno 0 is not born signalled).
    if (fence.seqno64) return Math.min(fence.seqno + 1, Number.MAX_SAFE_INTEGER);
    const raw = fence.seqno >>> 0;
    if (entry.lastRaw === undefined) {
      entry.lastRaw = raw;
      entry.lastSeqno = EPOCH + raw;
      return entry.lastSeqno;
    }
    const diff = ((raw - entry.lastRaw) | 0);
    const seqno = entry.lastSeqno + diff;
    if (diff > 0) {
      entry.lastRaw = raw;
      entry.lastSeqno = seqno;
    }
    return seqno;
  }
}
