/**
 * The one authoritative reservation object of a shared buffer, kept by its
 * exporter (SPEC.md 11A.7). The exporter's own drivers add to it directly;
 * importers add through DMABUF_RESV_ADD, with the same rule: Linux's
 * dma_resv_add_fence (DmaResv.addFence), which replaces an entry only if it
 * has signalled, or if it is an earlier-or-same fence of the new fence's
 * own timeline stored with an equal or weaker usage. An importer's fences
 * live on contexts that stand for its own timelines, so it can never
 * replace an unsignalled fence of the exporter or of another importer, and
 * never one of its own with an earlier one (CVE-2022-49935).
 *
 * The wrapper adds what crossing VMs needs on top of DmaResv: where each
 * fence came from (for the per-importer bound), counters, and its lifecycle
 * (ResvMachine, SPEC.md 11A.12): adds and snapshots while live, nothing
 * once dropped.
 */
import { ProtocolError } from '../../../protocol/errors.ts';
import { RESV_MAX_PEER_FENCES } from '../../../protocol/messages/dmabuf-sync.ts';
import { ResvMachine, type ResvEvent, type ResvState } from '../../../protocol/machines/resv.ts';
import type { MachineState } from '../../../protocol/state-machine.ts';
import { type DmaFence, isFenceContainer } from '../../fence/dma-fence.ts';
import { DmaResv, DmaResvUsage } from '../../fence/dma-resv.ts';
import { toRemoteFence } from '../../fence-remote/remote-fence.ts';

/** What one add did. */
export interface AddResult {
  /** Fences that took the place of an entry (a signalled one, or a promotion on their own timeline). */
  replaced: number;
  /** Fences stored as new entries. */
  appended: number;
}

/** An unsignalled entry of a snapshot. */
export interface ResvFence {
  readonly fence: DmaFence;
  readonly usage: DmaResvUsage;
}

/** Counters of one reservation object. */
export interface SharedResvCounters {
  /** Fences added by this domain's own code. */
  localAdds: number;
  /** Fences added by importers. */
  peerAdds: number;
  replaced: number;
  appended: number;
  /** Importer adds refused by the per-importer bound. */
  limited: number;
}

/** A shared buffer's reservation object (exporter side). */
export class SharedResv {
  /** The reservation object itself (Linux's dma_buf.resv). */
  readonly resv = new DmaResv();
  /** The exporting domain: fences that are not another domain's count as its own. */
  readonly domid: number;
  readonly counters: SharedResvCounters = { localAdds: 0, peerAdds: 0, replaced: 0, appended: 0, limited: 0 };
  /** live, then gone once dropped (ResvMachine). */
  readonly lifecycle: MachineState<ResvState, ResvEvent> = ResvMachine.start();

  constructor(domid: number) {
    this.domid = domid;
  }

  /** The domain a stored fence came from: the owner of an imported fence's timeline, else this one. */
  originOf(fence: DmaFence): number {
    return toRemoteFence(fence)?.owner ?? this.domid;
  }

  /** Unsignalled entries (any usage) whose fence came from `dom`. */
  pendingFrom(dom: number): number {
    let n = 0;
    for (const e of this.resv.fences(DmaResvUsage.BOOKKEEP)) if (this.originOf(e.fence) === dom && !e.fence.isSignaled()) n++;
    return n;
  }

  /**
   * Refuses (ERR_LIMIT) an importer's add of `n` fences that could leave it
   * more than RESV_MAX_PEER_FENCES unsignalled entries. Conservative: every
   * new fence is counted as if it were appended.
   */
  checkPeerRoom(dom: number, n: number): void {
    const held = this.pendingFrom(dom);
    if (held + n > RESV_MAX_PEER_FENCES) {
      this.counters.limited++;
      throw new ProtocolError('ERR_LIMIT', `dom${dom} already has ${held} unsignalled fence(s) in this reservation object; ${n} more could exceed ${RESV_MAX_PEER_FENCES}`, 'body.fences');
    }
  }

  /**
   * dma_resv_add_fence for each leaf, in order, with `usage`. Synchronous,
   * so a list is added atomically with respect to every other add and
   * snapshot (what holding the dma_resv lock gives in Linux).
   * @throws ProtocolError ERR_BAD_ARGUMENT for a container (add its leaves)
   */
  add(leaves: readonly DmaFence[], usage: DmaResvUsage, from: number): AddResult {
    for (const f of leaves) {
      if (isFenceContainer(f)) throw new ProtocolError('ERR_BAD_ARGUMENT', `${f.toString()} is a container: add each of its fences on its own`);
    }
    this.lifecycle.apply('fences-added');
    const out: AddResult = { replaced: 0, appended: 0 };
    for (const f of leaves) {
      const before = this.resv.numFences;
      this.resv.addFence(f, usage);
      if (this.resv.numFences > before) out.appended++;
      else out.replaced++;
    }
    if (from === this.domid) this.counters.localAdds += leaves.length;
    else this.counters.peerAdds += leaves.length;
    this.counters.replaced += out.replaced;
    this.counters.appended += out.appended;
    return out;
  }

  /** Snapshot of the unsignalled entries with `usage` or a stronger one (dma_resv_get_fences, with usages). */
  pending(usage: DmaResvUsage): ResvFence[] {
    this.lifecycle.apply('snapshot-taken');
    return this.#unsignalled(usage);
  }

  /** Its buffer was released, or the layer unloads: nothing more is added or read (the registry forgets it). */
  drop(): void {
    this.lifecycle.apply('dropped');
  }

  #unsignalled(usage: DmaResvUsage): ResvFence[] {
    const out: ResvFence[] = [];
    for (const e of this.resv.unlockedFences(usage)) {
      if (e.restarted) out.length = 0;
      out.push({ fence: e.fence, usage: e.usage });
    }
    return out;
  }

  /** Entries stored (signalled ones included) and unsignalled ones. */
  size(): { entries: number; pending: number } {
    return { entries: this.resv.numFences, pending: this.#unsignalled(DmaResvUsage.BOOKKEEP).length };
  }
}
