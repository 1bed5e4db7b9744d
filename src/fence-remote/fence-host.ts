/**
 * The cross-VM fence layer of one domain: the owner side (its shared
 * timelines), the observer side (timelines other domains shared with it),
 * the export of fences and sync_files to peers, and the inbox where
 * imported sync_files wait for the application.
 *
 *   const host = new FenceHost(kernel);
 *   const tl = host.createTimeline('render');
 *   const f = tl.createFence(1);
 *   await host.exportFence(peer, f, { cookie: 1 });   // shares tl with peer first
 *   tl.signal(1);                                      // the peer's fence signals
 *   // on the peer:
 *   const file = await peerHost.takeImport(owner, 1); await file.fence.wait(1000);
 *
 * Close cascade (shutdown): inbox closed (takers fail) -> imports
 * finalised with -ECANCELED, unmapped, ports closed, owners told
 * (FENCE_TIMELINE_DETACHED) -> own timelines
 * destroyed (pending points -ENOENT, observers told and unmapped, grants
 * ended, pages freed) -> DOMAIN_DIED listener and FENCE_* handlers removed.
 *
 * The sync layer of shared buffers (src/hyper-dmabuf/sync) uses prepareExport / importRefs
 * directly: a fence's references ride in any message that embeds FENCE_REF.
 */
import { EventEmitter } from 'node:events';
import { ProtocolError } from '../../protocol/index.ts';
import { FENCE_EXPORT, FENCE_MAX_REFS, FENCE_SLOTS_RELEASE, FENCE_TIMELINE_DETACHED, FENCE_TIMELINE_SHARE, FENCE_TIMELINE_UNSHARE } from '../../protocol/messages/fence.ts';
import type { EventOf } from '../../protocol/message.ts';
import type { DOMAIN_DIED } from '../../protocol/messages/session.ts';
import type { DmaFence } from '../fence/dma-fence.ts';
import { DmaFenceArray } from '../fence/fence-array.ts';
import { allocateFenceContexts } from '../fence/fence-context.ts';
import { SyncFile } from '../fence/sync-file.ts';
import { unwrapFences } from '../fence/unwrap.ts';
import { RemoteError } from '../transport/rpc-connection.ts';
import { FenceRemoteError } from '../guest/errors.ts';
import { FenceBridge } from './fence-bridge.ts';
import type { FenceKernel } from './host-kernel.ts';
import { ImportInbox } from './import-inbox.ts';
import { type SharedFence, SharedTimeline, toSharedFence } from './shared-timeline.ts';
import { type FenceRef, TimelineObserver, type TimelineObserverOptions, type TimelineObserverStats } from './timeline-observer.ts';
import { TimelineOwner, type TimelineOwnerOptions, type TimelineOwnerStats } from './timeline-owner.ts';

/** Host lifecycle. */
export const FenceHostState = { Running: 'running', ShuttingDown: 'shutting-down', Down: 'down' } as const;
/** A FenceHostState value. */
export type FenceHostState = (typeof FenceHostState)[keyof typeof FenceHostState];

/** Options of a host. */
export interface FenceHostOptions extends TimelineOwnerOptions, TimelineObserverOptions {
  /** Most imports of one peer waiting in the inbox (ERR_LIMIT beyond). */
  maxInboxPerPeer?: number;
  /** How long an export waits for the peer's answer. */
  exportTimeoutMs?: number;
}

/** References of one export, with their slot counts held until sent or aborted. */
export interface PreparedExport {
  /** The peer they are for. */
  readonly peer: number;
  /** FENCE_REF values, in leaf order. */
  readonly refs: FenceRef[];
  /** Returns the slot counts (the message carrying the refs was refused or never sent). Idempotent. */
  abort(): void;
}

/** Options of one export. */
export interface ExportOptions {
  /** The cookie the peer's application takes the import by. */
  cookie: number;
  /** sync_file name. */
  name?: string;
}

/** An import as the 'imported' event reports it. */
export interface ImportedEvent {
  src: number;
  cookie: number;
  file: SyncFile;
}

/** A snapshot of the layer. */
export interface FenceHostStats {
  state: FenceHostState;
  owner: TimelineOwnerStats;
  observer: TimelineObserverStats;
  inbox: { waiting: number; takers: number; delivered: number };
  bridges: number;
  bridged: number;
  exports: number;
  exportErrors: number;
  imports: number;
  importErrors: number;
}

/** The cross-VM fence layer of one domain. Events: 'imported' (ImportedEvent). */
export class FenceHost extends EventEmitter {
  readonly domid: number;
  readonly owner: TimelineOwner;
  readonly observer: TimelineObserver;
  readonly inbox: ImportInbox;
  readonly bridge: FenceBridge;
  readonly #k: FenceKernel;
  readonly #exportTimeoutMs: number | undefined;
  #state: FenceHostState = FenceHostState.Running;
  #shuttingDown: Promise<void> | undefined;
  readonly #counters = { exports: 0, exportErrors: 0, imports: 0, importErrors: 0 };
  // Removes the FENCE_* handlers from the connection, at the end of shutdown.
  readonly #unregister: Array<() => void> = [];
  readonly #onPeerDied = (body: EventOf<typeof DOMAIN_DIED>): void => {
    this.owner.onPeerDied(body.domid);
    void this.observer.onOwnerDied(body.domid);
    this.inbox.peerDied(body.domid);
  };
  readonly #onPeerUp = (body: { domid: number }): void => {
    this.inbox.peerUp(body.domid);
  };

  /** Registers the FENCE_* handlers on the kernel's connection (one live host per kernel; shutdown removes them). */
  constructor(kernel: FenceKernel, options: FenceHostOptions = {}) {
    super();
    this.#k = kernel;
    this.domid = kernel.domid;
    this.owner = new TimelineOwner(kernel, options);
    this.observer = new TimelineObserver(kernel, options);
    this.inbox = new ImportInbox(options.maxInboxPerPeer);
    this.bridge = new FenceBridge((name) => this.owner.create(name));
    this.#exportTimeoutMs = options.exportTimeoutMs;
    const hv = kernel.hv;
    this.#unregister.push(
      hv.handlePeerRequest(FENCE_TIMELINE_SHARE, (body, src) => {
        this.#checkRunning('ERR_FENCE_SETUP_FAILED');
        return this.observer.onShare(src, body);
      }),
      hv.handlePeerRequest(FENCE_TIMELINE_UNSHARE, (body, src) => this.observer.onUnshare(src, body)),
      hv.handlePeerRequest(FENCE_EXPORT, (body, src) => {
        this.#checkRunning('ERR_FENCE_UNKNOWN_TIMELINE');
        this.#onExport(src, body.cookie, body.fences, body.name);
        return {};
      }),
      hv.onEventOf(FENCE_SLOTS_RELEASE, (body, src) => { if (src !== undefined) this.owner.onSlotsRelease(src, body); }),
      hv.onEventOf(FENCE_TIMELINE_DETACHED, (body, src) => { if (src !== undefined) this.owner.onDetached(src, body.tl); }),
    );
    kernel.on('peerDied', this.#onPeerDied);
    kernel.on('peerUp', this.#onPeerUp);
  }

  get state(): FenceHostState {
    return this.#state;
  }

  /** A new shared timeline of this domain (value 0). */
  createTimeline(name = `d${this.domid}-timeline`): SharedTimeline {
    this.#checkLocal();
    return this.owner.create(name);
  }

  /** Destroys a timeline of this domain (see TimelineOwner.destroy). */
  destroyTimeline(tl: SharedTimeline): Promise<void> {
    return this.owner.destroy(tl);
  }

  /** Shares a timeline with a peer now, rather than on its first export. */
  shareTimeline(tl: SharedTimeline, peer: number): Promise<void> {
    this.#checkLocal();
    return this.owner.share(tl, peer);
  }

  /**
   * The references that name `what` (a fence, or a sync_file's fence) for
   * `peer`: every leaf, in unwrap order. Pending leaves on this domain's
   * timelines are referenced directly, other pending leaves through a
   * bridge timeline, signalled leaves by their status. Every timeline
   * involved is shared with the peer first; then, in one synchronous step,
   * a slot count is held per pending leaf.
   * @throws FenceRemoteError ERR_LIMIT (more than 256 leaves, or no free slot), ERR_PEER_GONE
   */
  async prepareExport(peer: number, what: DmaFence | SyncFile): Promise<PreparedExport> {
    this.#checkLocal();
    const fence = what instanceof SyncFile ? what.fence : what;
    const leaves = [...unwrapFences(fence)];
    if (leaves.length > FENCE_MAX_REFS) throw new FenceRemoteError('ERR_LIMIT', `${leaves.length} leaf fences; one export carries at most ${FENCE_MAX_REFS}`);
    const points: Array<SharedFence | DmaFence> = leaves.map((leaf) => {
      if (leaf.isSignaled()) return leaf;
      const shared = toSharedFence(leaf);
      return shared && this.owner.owns(shared.timeline) ? shared : this.bridge.pointFor(leaf);
    });
    const timelines = new Set<SharedTimeline>();
    for (const p of points) {
      const shared = toSharedFence(p);
      if (shared && !shared.testSignaledFlag()) timelines.add(shared.timeline);
    }
    await Promise.all([...timelines].map((tl) => this.owner.share(tl, peer)));
    // From here on nothing awaits: the statuses read are the ones exported.
    const held: Array<{ tl: SharedTimeline; slot: number }> = [];
    const abort = (): void => {
      for (const { tl, slot } of held.splice(0)) this.owner.release(tl, peer, [slot]);
    };
    try {
      const refs = points.map((p): FenceRef => {
        const shared = toSharedFence(p);
        // Only signalled leaves are left unbridged, so anything not on an own timeline has its final status.
        if (!shared || !this.owner.owns(shared.timeline)) return { status: p.getStatus() };
        if (shared.testSignaledFlag() && !this.owner.isSharedWith(shared.timeline, peer)) return { status: shared.getStatus() };
        const h = this.owner.hold(shared, peer);
        if ('slot' in h) {
          held.push({ tl: shared.timeline, slot: h.slot });
          return { tl: shared.timeline.id, seqno: shared.seqno, slot: h.slot };
        }
        return { tl: shared.timeline.id, seqno: shared.seqno, status: h.status };
      });
      return { peer, refs, abort };
    } catch (e) {
      abort();
      throw e;
    }
  }

  /**
   * Exports a fence or sync_file to `peer` (FENCE_EXPORT), filed there
   * under `cookie`. Resolves once the peer has imported it. If the peer (or
   * the backend) refuses, the slot counts are returned at once; on a
   * timeout they stay held until the peer releases them or dies.
   */
  async exportFence(peer: number, what: DmaFence | SyncFile, options: ExportOptions): Promise<void> {
    await this.sendExport(await this.prepareExport(peer, what), options);
  }

  /**
   * Sends prepared references as one FENCE_EXPORT. Split from
   * prepareExport so that a producer can hold the slots of a still-pending
   * fence, start the send, and signal without waiting for the answer.
   */
  async sendExport(prepared: PreparedExport, options: ExportOptions): Promise<void> {
    try {
      await this.#k.hv.peerRequest(FENCE_EXPORT, prepared.peer, {
        cookie: options.cookie,
        fences: prepared.refs,
        ...(options.name !== undefined ? { name: options.name.slice(0, 32) } : {}),
      }, this.#exportTimeoutMs);
      this.#counters.exports++;
    } catch (e) {
      this.#counters.exportErrors++;
      if (e instanceof RemoteError) prepared.abort();
      throw e;
    }
  }

  /**
   * Destroys the bridge timelines that have no pending point (their
   * observers unmap them). Bridges are made per foreign fence context on
   * demand; a long-lived domain calls this now and then.
   * @returns how many were destroyed
   */
  async releaseIdleBridges(): Promise<number> {
    const idle = this.bridge.takeIdle();
    await Promise.all(idle.map((tl) => this.owner.destroy(tl)));
    return idle.length;
  }

  /**
   * Imports references sent by `src` (as FENCE_EXPORT does; the
   * DMABUF_RESV_* messages call it for their embedded refs). One fence per reference.
   * @throws ProtocolError as FENCE_EXPORT documents; nothing is imported then
   */
  importRefs(src: number, refs: readonly FenceRef[]): DmaFence[] {
    return this.observer.importRefs(src, refs);
  }

  /** The fence of a sync_file made of these leaves: the leaf itself, or an array of all of them. */
  static combine(leaves: readonly DmaFence[]): DmaFence {
    if (leaves.length === 1) return leaves[0]!;
    return new DmaFenceArray([...leaves], allocateFenceContexts(1), 1, false);
  }

  /** Takes the sync_file `src` exported under `cookie`, waiting up to `timeoutMs` for it. */
  takeImport(src: number, cookie: number, timeoutMs?: number): Promise<SyncFile> {
    return this.inbox.take(src, cookie, timeoutMs);
  }

  /** A snapshot of the layer, for stats commands and leak checks. */
  stats(): FenceHostStats {
    return {
      state: this.#state,
      owner: this.owner.stats(),
      observer: this.observer.stats(),
      inbox: { waiting: this.inbox.size, takers: this.inbox.waiting, delivered: this.inbox.delivered },
      bridges: this.bridge.timelines().length,
      bridged: this.bridge.bridged,
      ...this.#counters,
    };
  }

  /** Releases everything (see the close cascade above). Idempotent. */
  shutdown(): Promise<void> {
    this.#shuttingDown ??= (async () => {
      this.#state = FenceHostState.ShuttingDown;
      this.inbox.close();
      await Promise.all([this.observer.closeAll(), this.owner.destroyAll()]);
      this.#k.off('peerDied', this.#onPeerDied);
      this.#k.off('peerUp', this.#onPeerUp);
      // The handlers answered (refusing new work) until every observer had its UNSHARE answered.
      for (const off of this.#unregister.splice(0)) off();
      this.#state = FenceHostState.Down;
    })();
    return this.#shuttingDown;
  }

  #onExport(src: number, cookie: number, refs: readonly FenceRef[], name: string | undefined): void {
    try {
      try {
        this.inbox.check(src, cookie);
      } catch (e) {
        const code = (e as FenceRemoteError).code === 'ERR_LIMIT' ? 'ERR_LIMIT' : 'ERR_BAD_ARGUMENT';
        throw new ProtocolError(code, (e as Error).message, 'body.cookie');
      }
      const leaves = this.observer.importRefs(src, refs);
      const file = SyncFile.create(FenceHost.combine(leaves), name ?? '');
      this.inbox.put(src, cookie, file);
      this.#counters.imports++;
      this.emit('imported', { src, cookie, file } satisfies ImportedEvent);
    } catch (e) {
      this.#counters.importErrors++;
      throw e;
    }
  }

  #checkRunning(code: 'ERR_FENCE_SETUP_FAILED' | 'ERR_FENCE_UNKNOWN_TIMELINE'): void {
    if (this.#state !== FenceHostState.Running) throw new ProtocolError(code, `the fence layer of d${this.domid} is ${this.#state}`);
  }

  #checkLocal(): void {
    if (this.#state !== FenceHostState.Running) throw new FenceRemoteError('ERR_STATE', `the fence layer of d${this.domid} is ${this.#state}`);
  }
}
