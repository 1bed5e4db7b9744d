/**
 * The owner side of cross-VM fences: this domain's shared timelines, their
 * pages, and one share per timeline per observer.
 *
 * Each share is a declared state machine (protocol/machines/fence.ts, drawn
 * in SPEC.md 11A.4).
 *
 * offered: the page is granted read-only to the observer and a port is
 * allocated for it, FENCE_TIMELINE_SHARE is in flight. mapped: the observer
 * mapped the page and bound the port; the owner rings the port after every
 * advance that passes a point the observer holds. closed: the observer's
 * slot counts are dropped, the port is closed, and access to the grant is
 * ended (deferred while the observer still maps it, e.g. when UNSHARE got
 * no answer). The page is scrubbed and freed once the timeline is destroyed
 * and every share's grant has ended.
 */
import { FENCE_TIMELINE_SHARE, FENCE_TIMELINE_UNSHARE, type FENCE_SLOTS_RELEASE } from '../../protocol/messages/fence.ts';
import type { EventOf } from '../../protocol/message.ts';
import { PAGE_SIZE } from '../../protocol/limits.ts';
import { FenceRemoteError } from '../guest/errors.ts';
import { isPeerGone, type FenceKernel } from './host-kernel.ts';
import { FenceShareMachine, FenceShareState, TimelineState, type FenceShareEvent } from '../../protocol/machines/fence.ts';
import type { MachineState } from '../../protocol/state-machine.ts';
import { type PointHold, SharedTimeline, type SharedFence } from './shared-timeline.ts';
import { TimelinePageWriter } from './timeline-page.ts';

/** One observer's share of one timeline. */
interface Share {
  readonly peer: number;
  /** Its lifecycle (SPEC.md 11A.4); changes only through its transition table. */
  readonly lifecycle: MachineState<FenceShareState, FenceShareEvent>;
  gref: number;
  port: number;
  /** Settles when the share leaves `offered`. */
  ready: Promise<void>;
}

/** A timeline and what it owns. */
interface OwnedTimeline {
  readonly tl: SharedTimeline;
  readonly frame: number;
  readonly shares: Map<number, Share>;
  /** Grant refs of closed shares whose access has not ended yet. */
  grantsEnding: number;
  destroying: Promise<void> | undefined;
  freed: boolean;
}

/** Options of the owner side. */
export interface TimelineOwnerOptions {
  /** How long to wait for an observer's answer to FENCE_TIMELINE_UNSHARE. */
  unshareTimeoutMs?: number;
  /** How long to wait for an observer's answer to FENCE_TIMELINE_SHARE. */
  shareTimeoutMs?: number;
}

/** Counters and sizes, owner side. */
export interface TimelineOwnerStats {
  timelines: number;
  /** Destroyed timelines whose page is not freed yet (a grant still ending). */
  timelinesClosing: number;
  shares: Record<FenceShareState, number>;
  pendingPoints: number;
  slotsUsed: number;
  slotHolds: number;
  /** Grants of the timeline pages that have not ended. */
  grantsLive: number;
  eventsSent: number;
  eventErrors: number;
  releasesReceived: number;
  releasesIgnored: number;
}

/** This domain's shared timelines. */
export class TimelineOwner {
  readonly #k: FenceKernel;
  readonly #timelines = new Map<number, OwnedTimeline>();
  readonly #byTimeline = new WeakMap<SharedTimeline, OwnedTimeline>();
  readonly #unshareTimeoutMs: number;
  readonly #shareTimeoutMs: number;
  #nextId = 1;
  readonly #counters = { eventsSent: 0, eventErrors: 0, releasesReceived: 0, releasesIgnored: 0 };

  constructor(kernel: FenceKernel, options: TimelineOwnerOptions = {}) {
    this.#k = kernel;
    this.#unshareTimeoutMs = options.unshareTimeoutMs ?? 5000;
    this.#shareTimeoutMs = options.shareTimeoutMs ?? 10_000;
  }

  /** Live (not destroyed) timelines. */
  timelines(): SharedTimeline[] {
    return [...this.#timelines.values()].filter((r) => r.tl.state === TimelineState.Live).map((r) => r.tl);
  }

  /** The live timeline with this id. */
  get(id: number): SharedTimeline | undefined {
    const rec = this.#timelines.get(id);
    return rec && rec.tl.state === TimelineState.Live ? rec.tl : undefined;
  }

  /** True if `tl` is one of this owner's timelines. */
  owns(tl: SharedTimeline): boolean {
    return this.#byTimeline.get(tl) !== undefined;
  }

  /** Creates a timeline: allocates (scrubbed) its page and writes the header. */
  create(name: string): SharedTimeline {
    const [frame] = this.#k.allocator.alloc(1);
    const ram = this.#k.ram.bytes;
    const id = this.#allocId();
    let rec: OwnedTimeline | undefined;
    const tl = new SharedTimeline({
      id,
      name: name.slice(0, 32),
      page: new TimelinePageWriter(ram.buffer as ArrayBuffer, ram.byteOffset + frame! * PAGE_SIZE),
      notify: (peers) => { if (rec) this.#ring(rec, peers); },
    });
    rec = { tl, frame: frame!, shares: new Map(), grantsEnding: 0, destroying: undefined, freed: false };
    this.#timelines.set(id, rec);
    this.#byTimeline.set(tl, rec);
    return tl;
  }

  /**
   * Shares `tl` with `peer` (FENCE_TIMELINE_SHARE) unless it already is;
   * concurrent callers share one handshake. Resolves once the observer has
   * mapped the page and bound the port.
   * @throws FenceRemoteError ERR_STATE (timeline destroyed), ERR_PEER_GONE; the observer's refusal as a RemoteError
   */
  async share(tl: SharedTimeline, peer: number): Promise<void> {
    const rec = this.#record(tl);
    if (tl.state !== TimelineState.Live) throw new FenceRemoteError('ERR_STATE', `timeline ${tl.name} is destroyed`);
    if (peer === this.#k.domid) throw new FenceRemoteError('ERR_BAD_ARGUMENT', 'a timeline is not shared with its own domain');
    const existing = rec.shares.get(peer);
    if (existing) {
      await existing.ready;
      if (existing.lifecycle.state !== FenceShareState.Mapped) throw new FenceRemoteError('ERR_PEER_GONE', `share of ${tl.name} with d${peer} is ${existing.lifecycle.state}`);
      return;
    }
    const share: Share = { peer, lifecycle: FenceShareMachine.start(), gref: 0, port: 0, ready: Promise.resolve() };
    rec.shares.set(peer, share);
    share.ready = this.#offer(rec, share);
    await share.ready;
  }

  /**
   * Holds one slot count of `peer` on a point for a reference about to be
   * sent (synchronous: the status seen is the one exported). The share must
   * be mapped, so that a peer death after this drops the count.
   * @throws FenceRemoteError ERR_PEER_GONE if the share is not mapped, ERR_LIMIT when the slots are exhausted
   */
  hold(point: SharedFence, peer: number): PointHold {
    const rec = this.#record(point.timeline);
    if (point.testSignaledFlag()) return { status: point.getStatus() };
    const share = rec.shares.get(peer);
    if (!share || share.lifecycle.state !== FenceShareState.Mapped) {
      throw new FenceRemoteError('ERR_PEER_GONE', `timeline ${point.timeline.name} is not shared with d${peer} (${share?.lifecycle.state ?? 'no share'})`);
    }
    return point.timeline.hold(point, peer);
  }

  /** True if `tl` is mapped by `peer` now. */
  isSharedWith(tl: SharedTimeline, peer: number): boolean {
    return this.#byTimeline.get(tl)?.shares.get(peer)?.lifecycle.state === FenceShareState.Mapped;
  }

  /** Returns counts: a refused export, or FENCE_SLOTS_RELEASE. */
  release(tl: SharedTimeline, peer: number, slots: readonly number[]): void {
    const r = tl.release(peer, slots);
    this.#counters.releasesReceived += r.released;
    this.#counters.releasesIgnored += r.ignored;
  }

  /** FENCE_SLOTS_RELEASE from `src`. Entries for unknown timelines or counts not held are ignored and counted. */
  onSlotsRelease(src: number, body: EventOf<typeof FENCE_SLOTS_RELEASE>): void {
    const rec = this.#timelines.get(body.tl);
    if (!rec) { this.#counters.releasesIgnored += body.slots.length; return; }
    this.release(rec.tl, src, body.slots);
  }

  /**
   * Stops sharing `tl` with `peer` (FENCE_TIMELINE_UNSHARE 'unshared'): the
   * observer signals what it still holds with -ECANCELED and unmaps.
   */
  async unshare(tl: SharedTimeline, peer: number): Promise<void> {
    const rec = this.#record(tl);
    const share = rec.shares.get(peer);
    if (share) await this.#closeShare(rec, share, 'unshared');
  }

  /**
   * Destroys a timeline: pending points signal with -ENOENT (also in their
   * slots), the page is marked closed, every observer is told
   * (FENCE_TIMELINE_UNSHARE 'closed') and unmaps, the grants end and the
   * page is freed. Idempotent; resolves when the shares are closed (the
   * page may wait for a grant that is still mapped).
   */
  destroy(tl: SharedTimeline): Promise<void> {
    const rec = this.#record(tl);
    rec.destroying ??= (async () => {
      tl.close();
      await Promise.all([...rec.shares.values()].map((s) => this.#closeShare(rec, s, 'closed')));
      this.#maybeFree(rec);
    })();
    return rec.destroying;
  }

  /** Destroys every timeline (host shutdown). */
  async destroyAll(): Promise<void> {
    await Promise.all([...this.#timelines.values()].map((r) => this.destroy(r.tl)));
  }

  /** FENCE_TIMELINE_DETACHED from `src`: the observer unmapped on its own; the share closes as on its death. */
  onDetached(src: number, tl: number): void {
    const rec = this.#timelines.get(tl);
    const share = rec?.shares.get(src);
    if (!rec || !share) return;
    rec.tl.dropPeer(src);
    void this.#releaseShare(rec, share);
  }

  /**
   * A peer died: its counts are dropped, and each of its shares is closed
   * without a message (the backend already released its mappings, so the
   * grants end at once).
   */
  onPeerDied(peer: number): void {
    for (const rec of this.#timelines.values()) {
      const share = rec.shares.get(peer);
      if (!share) continue;
      rec.tl.dropPeer(peer);
      void this.#releaseShare(rec, share);
    }
  }

  /** Counters and sizes. */
  stats(): TimelineOwnerStats {
    const shares: Record<FenceShareState, number> = { offered: 0, mapped: 0, closing: 0, closed: 0 };
    let pendingPoints = 0;
    let slotsUsed = 0;
    let slotHolds = 0;
    let grantsLive = 0;
    let timelines = 0;
    let closing = 0;
    for (const rec of this.#timelines.values()) {
      if (rec.tl.state === TimelineState.Live) timelines++; else closing++;
      pendingPoints += rec.tl.pendingPoints;
      slotsUsed += rec.tl.slotsUsed;
      slotHolds += rec.tl.slotHolds;
      grantsLive += rec.grantsEnding;
      for (const s of rec.shares.values()) {
        shares[s.lifecycle.state]++;
        if (s.gref !== 0) grantsLive++;
      }
    }
    return { timelines, timelinesClosing: closing, shares, pendingPoints, slotsUsed, slotHolds, grantsLive, ...this.#counters };
  }

  async #offer(rec: OwnedTimeline, share: Share): Promise<void> {
    const { tl } = rec;
    try {
      share.gref = await this.#k.grants.grantAccess(share.peer, rec.frame, true);
      share.port = await this.#k.evtchn.allocUnbound(share.peer);
      if (share.lifecycle.state !== FenceShareState.Offered) throw new FenceRemoteError('ERR_PEER_GONE', `d${share.peer} died while ${tl.name} was being shared`);
      await this.#k.hv.peerRequest(FENCE_TIMELINE_SHARE, share.peer, { tl: tl.id, name: tl.name, gref: share.gref, port: share.port }, this.#shareTimeoutMs);
    } catch (e) {
      void this.#releaseShare(rec, share);
      if (isPeerGone(e)) throw new FenceRemoteError('ERR_PEER_GONE', `sharing ${tl.name} with d${share.peer}: ${(e as Error).message}`);
      throw e;
    }
    // The peer may have died while the answer was on its way.
    if (share.lifecycle.state !== FenceShareState.Offered) throw new FenceRemoteError('ERR_PEER_GONE', `d${share.peer} died while ${tl.name} was being shared`);
    share.lifecycle.apply('answered');
  }

  async #closeShare(rec: OwnedTimeline, share: Share, reason: 'closed' | 'unshared'): Promise<void> {
    await share.ready.catch(() => undefined);
    if (share.lifecycle.state !== FenceShareState.Mapped) return;
    share.lifecycle.apply('unshare-sent');
    try {
      await this.#k.hv.peerRequest(FENCE_TIMELINE_UNSHARE, share.peer, { tl: rec.tl.id, reason }, this.#unshareTimeoutMs);
    } catch {
      // No answer (gone, wedged, or refused): the grant end is deferred until it unmaps or dies.
    }
    rec.tl.dropPeer(share.peer);
    await this.#releaseShare(rec, share);
  }

  // Closes a share now: port closed, grant access ended (deferred while mapped). Idempotent, and
  // safe to call again after a handshake step that was still running acquired a port or grant.
  // Resolves once the backend has closed the port.
  #releaseShare(rec: OwnedTimeline, share: Share): Promise<void> {
    if (share.lifecycle.allows('released')) share.lifecycle.apply('released');
    if (rec.shares.get(share.peer) === share) rec.shares.delete(share.peer);
    let closing: Promise<void> = Promise.resolve();
    if (share.port !== 0) {
      const port = share.port;
      share.port = 0;
      closing = this.#k.evtchn.close(port).catch(() => undefined);
    }
    if (share.gref !== 0) {
      const gref = share.gref;
      share.gref = 0;
      rec.grantsEnding++;
      try {
        this.#k.grants.endAccessDeferred(gref, () => {
          rec.grantsEnding--;
          this.#maybeFree(rec);
        });
      } catch {
        // The grant table is closed (kernel shutting down): the page goes with the RAM.
        rec.grantsEnding--;
      }
    }
    this.#maybeFree(rec);
    return closing;
  }

  // Frees the page of a destroyed timeline once no share and no grant is left.
  #maybeFree(rec: OwnedTimeline): void {
    if (rec.freed || rec.tl.state !== TimelineState.Closed || rec.shares.size > 0 || rec.grantsEnding > 0) return;
    rec.freed = true;
    this.#timelines.delete(rec.tl.id);
    try {
      this.#k.allocator.free([rec.frame]);
    } catch {
      // RAM already unmapped at shutdown.
    }
  }

  #ring(rec: OwnedTimeline, peers: ReadonlySet<number>): void {
    for (const peer of peers) {
      const share = rec.shares.get(peer);
      // Only mapped shares have a bound port; a closing share's observer re-reads the page on UNSHARE.
      if (!share || share.lifecycle.state !== FenceShareState.Mapped) continue;
      this.#counters.eventsSent++;
      this.#k.evtchn.send(share.port).catch(() => { this.#counters.eventErrors++; });
    }
  }

  #record(tl: SharedTimeline): OwnedTimeline {
    const rec = this.#byTimeline.get(tl);
    if (!rec) throw new FenceRemoteError('ERR_BAD_ARGUMENT', `timeline ${tl.name} does not belong to d${this.#k.domid}`);
    return rec;
  }

  #allocId(): number {
    // Ids only grow (u32, skipping live ones after wraparound), so an observer never confuses an old timeline with a new one.
    for (;;) {
      const id = this.#nextId;
      this.#nextId = id >= 0xffffffff ? 1 : id + 1;
      if (!this.#timelines.has(id)) return id;
    }
  }
}
