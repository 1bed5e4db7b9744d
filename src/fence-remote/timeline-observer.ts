/**
 * The observer side of cross-VM fences: timelines other domains shared
 * with this one, each a read-only mapping of the owner's page plus a bound
 * event-channel port, and the fences imported on them.
 *
 * Import state machine (per owner timeline):
 *
 *   (FENCE_TIMELINE_SHARE) setting-up --page mapped, header valid, port bound--> mapped
 *   setting-up --map/bind/header failure--> (nothing left; refused)
 *   mapped --UNSHARE / owner died / shutdown--> closed: last page check, every
 *          point still pending signals (slot status, or -ENOENT / -EPIPE /
 *          -ECANCELED), listener removed, page unmapped, port closed.
 *
 * Slot counts are returned in batches: every point read as signalled adds
 * its counts to a per-timeline list that is sent as one FENCE_SLOTS_RELEASE
 * at the end of the current task.
 */
import { ProtocolError, type Infer } from '../../protocol/index.ts';
import { FENCE_MAX_RELEASE, FENCE_SLOTS_RELEASE, FENCE_TIMELINE_DETACHED, type FENCE_REF, type FENCE_TIMELINE_SHARE, type FENCE_TIMELINE_UNSHARE } from '../../protocol/messages/fence.ts';
import type { RequestOf, ResponseOf } from '../../protocol/message.ts';
import type { ForeignMapping } from '../guest/foreign-mapping.ts';
import type { DmaFence } from '../fence/dma-fence.ts';
import { FENCE_ERR_CLOSED, FENCE_ERR_DETACHED, FENCE_ERR_OWNER_DIED } from '../fence/errno.ts';
import { FenceRemoteError } from '../guest/errors.ts';
import type { FenceKernel } from './host-kernel.ts';
import { RemoteFence } from './remote-fence.ts';
import { TimelineImportMachine, TimelineImportState, type TimelineImportEvent } from '../../protocol/machines/fence.ts';
import type { MachineState } from '../../protocol/state-machine.ts';
import { RemoteTimeline } from './remote-timeline.ts';
import { TimelinePageError, TimelinePageReader } from './timeline-page.ts';

/** A fence reference as decoded from a message. */
export type FenceRef = Infer<(typeof FENCE_REF)['fields']>;

interface ImportRecord {
  readonly owner: number;
  readonly tl: number;
  /** Lifecycle (SPEC.md 11A.4); changes only through its transition table. */
  readonly lifecycle: MachineState<TimelineImportState, TimelineImportEvent>;
  rt: RemoteTimeline | undefined;
  mapping: ForeignMapping | undefined;
  port: number;
  unlisten: () => void;
  /** Set when the owner died during the handshake. */
  ownerDied: boolean;
}

/** Options of the observer side. */
export interface TimelineObserverOptions {
  /** Most timelines imported at once (ERR_LIMIT beyond). */
  maxTimelines?: number;
}

/** Counters and sizes, observer side. */
export interface TimelineObserverStats {
  timelines: number;
  pendingPoints: number;
  slotHolds: number;
  eventsReceived: number;
  polls: number;
  signalled: number;
  errored: number;
  protocolErrors: number;
  releasesSent: number;
  releaseMessages: number;
}

function key(owner: number, tl: number): string {
  return `${owner}:${tl}`;
}

// The wire error for a local refusal of a reference.
function wireError(e: unknown, field: string): ProtocolError {
  if (e instanceof ProtocolError) return e;
  if (e instanceof FenceRemoteError) {
    return new ProtocolError(e.code === 'ERR_LIMIT' ? 'ERR_LIMIT' : e.code === 'ERR_STATE' ? 'ERR_FENCE_UNKNOWN_TIMELINE' : 'ERR_BAD_ARGUMENT', e.message, field);
  }
  return new ProtocolError('ERR_INTERNAL', (e as Error)?.message ?? String(e), field);
}

/** Timelines imported by this domain. */
export class TimelineObserver {
  readonly #k: FenceKernel;
  readonly #imports = new Map<string, ImportRecord>();
  readonly #maxTimelines: number;
  // Slot counts to return, per timeline, flushed at the end of the current task.
  readonly #toRelease = new Map<string, number[]>();
  #flushQueued = false;
  // Counters of finalised imports, so stats survive their removal.
  readonly #retired = { polls: 0, signalled: 0, errored: 0, protocolErrors: 0 };
  readonly #counters = { eventsReceived: 0, releasesSent: 0, releaseMessages: 0 };

  constructor(kernel: FenceKernel, options: TimelineObserverOptions = {}) {
    this.#k = kernel;
    this.#maxTimelines = options.maxTimelines ?? 1024;
  }

  /** The imported timeline `tl` of `owner`, while mapped. */
  get(owner: number, tl: number): RemoteTimeline | undefined {
    const rec = this.#imports.get(key(owner, tl));
    return rec?.lifecycle.state === TimelineImportState.Mapped ? rec.rt : undefined;
  }

  /** Every mapped import. */
  timelines(): RemoteTimeline[] {
    return [...this.#imports.values()].flatMap((r) => (r.lifecycle.state === TimelineImportState.Mapped && r.rt ? [r.rt] : []));
  }

  /**
   * FENCE_TIMELINE_SHARE from `src`: map the page read-only, check its
   * header, bind the port; refuse with nothing left behind on any failure.
   */
  async onShare(src: number, body: RequestOf<typeof FENCE_TIMELINE_SHARE>): Promise<ResponseOf<typeof FENCE_TIMELINE_SHARE>> {
    const k = key(src, body.tl);
    if (this.#imports.has(k)) throw new ProtocolError('ERR_BAD_ARGUMENT', `timeline ${body.tl} of d${src} is already shared with d${this.#k.domid}`, 'body.tl');
    if (this.#imports.size >= this.#maxTimelines) throw new ProtocolError('ERR_LIMIT', `d${this.#k.domid} already imports ${this.#imports.size} timelines`);
    const rec: ImportRecord = { owner: src, tl: body.tl, lifecycle: TimelineImportMachine.start(), rt: undefined, mapping: undefined, port: 0, unlisten: () => undefined, ownerDied: false };
    this.#imports.set(k, rec);
    try {
      try {
        rec.mapping = await this.#k.mapper.mapGrants(src, [body.gref], { readonly: true });
      } catch (e) {
        throw new ProtocolError('ERR_FENCE_SETUP_FAILED', `mapping the timeline page (gref ${body.gref}): ${(e as Error).message}`, 'body.gref');
      }
      let reader: TimelinePageReader;
      try {
        reader = new TimelinePageReader(rec.mapping.view);
      } catch (e) {
        if (e instanceof TimelinePageError) throw new ProtocolError('ERR_FENCE_BAD_PAGE', `timeline page of d${src}: ${e.message}`, 'body.gref');
        throw e;
      }
      try {
        rec.port = await this.#k.evtchn.bindInterdomain(src, body.port);
      } catch (e) {
        throw new ProtocolError('ERR_FENCE_SETUP_FAILED', `binding port ${body.port} of d${src}: ${(e as Error).message}`, 'body.port');
      }
      if (rec.ownerDied) throw new ProtocolError('ERR_PEER_GONE', `d${src} died during the share`);
      const rt = new RemoteTimeline({ owner: src, tl: body.tl, name: body.name, reader, release: (slots) => this.#queueRelease(rec, slots) });
      rec.rt = rt;
      rec.unlisten = this.#k.evtchn.listen(rec.port, () => {
        this.#counters.eventsReceived++;
        rt.poll();
      });
      rec.lifecycle.apply('set-up');
      return {};
    } catch (e) {
      await this.#teardown(rec);
      throw e;
    }
  }

  /**
   * FENCE_TIMELINE_UNSHARE from `src`: a last page check, every point still
   * held signals (with its slot's status: the owner wrote the final ones
   * before a close), then the page is unmapped and the port closed.
   */
  async onUnshare(src: number, body: RequestOf<typeof FENCE_TIMELINE_UNSHARE>): Promise<ResponseOf<typeof FENCE_TIMELINE_UNSHARE>> {
    const rec = this.#imports.get(key(src, body.tl));
    if (!rec || rec.lifecycle.state !== TimelineImportState.Mapped || !rec.rt) {
      throw new ProtocolError('ERR_FENCE_UNKNOWN_TIMELINE', `d${src} shares no timeline ${body.tl} with d${this.#k.domid}`, 'body.tl');
    }
    // Counts still queued are dropped: the owner drops this observer's counts itself after the answer.
    this.#toRelease.delete(key(src, body.tl));
    const errored = rec.rt.finalize(body.reason === 'closed' ? FENCE_ERR_CLOSED : FENCE_ERR_DETACHED);
    await this.#teardown(rec);
    return { errored };
  }

  /**
   * Checks every reference of a message before importing any (so a refusal
   * holds nothing), then imports them in order and checks each touched page.
   * @throws ProtocolError ERR_FENCE_UNKNOWN_TIMELINE, ERR_BAD_ARGUMENT
   */
  importRefs(src: number, refs: readonly FenceRef[]): DmaFence[] {
    if (refs.length === 0) throw new ProtocolError('ERR_BAD_ARGUMENT', 'no fences', 'body.fences');
    refs.forEach((ref, i) => this.#checkRef(src, ref, `body.fences[${i}]`));
    const touched = new Set<RemoteTimeline>();
    const fences = refs.map((ref) => {
      if (ref.slot !== undefined) {
        const rt = this.get(src, ref.tl!)!;
        touched.add(rt);
        return rt.importPending(ref.seqno!, ref.slot);
      }
      const rt = ref.tl !== undefined ? this.get(src, ref.tl) : undefined;
      return rt ? rt.importSignalled(ref.seqno!, ref.status!) : RemoteFence.detached(src, ref.status!);
    });
    for (const rt of touched) rt.poll();
    return fences;
  }

  /** The owner died: every timeline it shared is finalised with -EPIPE and released. */
  async onOwnerDied(owner: number): Promise<void> {
    const recs = [...this.#imports.values()].filter((r) => r.owner === owner);
    for (const rec of recs) {
      this.#toRelease.delete(key(rec.owner, rec.tl));
      if (rec.lifecycle.state === TimelineImportState.SettingUp) { rec.ownerDied = true; continue; }
      rec.rt?.finalize(FENCE_ERR_OWNER_DIED);
    }
    await Promise.all(recs.filter((r) => r.lifecycle.state !== TimelineImportState.SettingUp).map((r) => this.#teardown(r)));
  }

  /**
   * Ends every import (host shutdown): pending points signal with
   * -ECANCELED, pages are unmapped and ports closed, and then each owner is
   * told (FENCE_TIMELINE_DETACHED) so it can close the share.
   */
  async closeAll(): Promise<void> {
    const recs = [...this.#imports.values()].filter((r) => r.lifecycle.state !== TimelineImportState.SettingUp);
    this.#toRelease.clear();
    for (const rec of recs) rec.rt?.finalize(FENCE_ERR_DETACHED);
    await Promise.all(recs.map(async (rec) => {
      await this.#teardown(rec);
      try {
        this.#k.hv.peerNotify(FENCE_TIMELINE_DETACHED, rec.owner, { tl: rec.tl });
      } catch {
        // The connection is closing: the owner closes the share when this domain dies.
      }
    }));
  }

  /** Counters and sizes. */
  stats(): TimelineObserverStats {
    const s: TimelineObserverStats = {
      timelines: 0, pendingPoints: 0, slotHolds: 0, ...this.#counters, ...this.#retired,
    };
    for (const rec of this.#imports.values()) {
      if (rec.lifecycle.state === TimelineImportState.Mapped && rec.rt) s.timelines++;
      if (!rec.rt) continue;
      s.pendingPoints += rec.rt.pendingPoints;
      s.slotHolds += rec.rt.holdCount;
      const r = rec.rt.stats();
      s.polls += r.polls;
      s.signalled += r.signalled;
      s.errored += r.errored;
      s.protocolErrors += r.protocolErrors;
    }
    return s;
  }

  #checkRef(src: number, ref: FenceRef, path: string): void {
    const hasSlot = ref.slot !== undefined;
    if (hasSlot === (ref.status !== undefined)) throw new ProtocolError('ERR_BAD_ARGUMENT', 'a fence reference needs exactly one of slot and status', path);
    if ((ref.tl === undefined) !== (ref.seqno === undefined)) throw new ProtocolError('ERR_BAD_ARGUMENT', 'tl and seqno go together', path);
    if (ref.status !== undefined && ref.status === 0) throw new ProtocolError('ERR_BAD_ARGUMENT', 'status 0 is not a final status', `${path}.status`);
    if (!hasSlot) return;
    if (ref.tl === undefined) throw new ProtocolError('ERR_BAD_ARGUMENT', 'a pending fence needs tl and seqno', path);
    const rt = this.get(src, ref.tl);
    if (!rt) throw new ProtocolError('ERR_FENCE_UNKNOWN_TIMELINE', `d${src} shares no timeline ${ref.tl} with d${this.#k.domid}`, `${path}.tl`);
    try {
      rt.checkRef(ref.seqno!, ref.slot!);
    } catch (e) {
      throw wireError(e, `${path}.slot`);
    }
  }

  #queueRelease(rec: ImportRecord, slots: readonly number[]): void {
    const k = key(rec.owner, rec.tl);
    const list = this.#toRelease.get(k) ?? [];
    list.push(...slots);
    this.#toRelease.set(k, list);
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushQueued = false;
    for (const [k, slots] of this.#toRelease) {
      const rec = this.#imports.get(k);
      if (!rec || rec.lifecycle.state !== TimelineImportState.Mapped) continue;
      for (let i = 0; i < slots.length; i += FENCE_MAX_RELEASE) {
        const chunk = slots.slice(i, i + FENCE_MAX_RELEASE);
        try {
          this.#k.hv.peerNotify(FENCE_SLOTS_RELEASE, rec.owner, { tl: rec.tl, slots: chunk });
          this.#counters.releasesSent += chunk.length;
          this.#counters.releaseMessages++;
        } catch {
          // The connection is closing: the owner drops this domain's counts when it dies.
        }
      }
    }
    this.#toRelease.clear();
  }

  // Undoes whatever the record holds: listener, mapping, port. Idempotent.
  async #teardown(rec: ImportRecord): Promise<void> {
    if (this.#imports.get(key(rec.owner, rec.tl)) === rec) this.#imports.delete(key(rec.owner, rec.tl));
    if (rec.rt) {
      const r = rec.rt.stats();
      this.#retired.polls += r.polls;
      this.#retired.signalled += r.signalled;
      this.#retired.errored += r.errored;
      this.#retired.protocolErrors += r.protocolErrors;
      rec.rt = undefined;
    }
    if (rec.lifecycle.allows('torn-down')) rec.lifecycle.apply('torn-down');
    rec.unlisten();
    rec.unlisten = () => undefined;
    const mapping = rec.mapping;
    rec.mapping = undefined;
    const port = rec.port;
    rec.port = 0;
    await Promise.allSettled([
      mapping?.unmap(),
      port !== 0 ? this.#k.evtchn.close(port) : undefined,
    ]);
  }
}
