/**
 * The reservation objects of this domain's own buffers, one per buffer
 * (however many domains it is exported to: every export of a buffer shares
 * its reservation object, as every importer of a Linux dma-buf shares
 * dma_buf.resv). Made on first use; a buffer that never carried a fence
 * has none and nothing to wait for.
 *
 * Making one also installs the buffer's CPU-access hook, so that
 * beginCpuAccess on the buffer waits for its fences. The reservation
 * objects of released buffers are dropped (ResvMachine: gone) the next time
 * the registry is touched, and every one when the layer unloads.
 */
import { DmaBufState, type CpuAccessSync, type DmaBuf } from '../../dmabuf/dma-buf.ts';
import { SharedResv, type SharedResvCounters } from './shared-resv.ts';

/** Totals over the live reservation objects and those already dropped. */
export interface ResvRegistryStats extends SharedResvCounters {
  /** Buffers with a reservation object now. */
  buffers: number;
  /** Entries stored, signalled ones included. */
  entries: number;
  /** Unsignalled entries. */
  pending: number;
}

/** Reservation objects by buffer (exporter side). */
export class ResvRegistry {
  readonly #domid: number;
  readonly #cpuSync: CpuAccessSync;
  readonly #byBuf = new Map<DmaBuf, SharedResv>();
  readonly #retired: SharedResvCounters = { localAdds: 0, peerAdds: 0, replaced: 0, appended: 0, limited: 0 };

  /** @param cpuSync installed on every buffer that gets a reservation object */
  constructor(domid: number, cpuSync: CpuAccessSync) {
    this.#domid = domid;
    this.#cpuSync = cpuSync;
  }

  /** The buffer's reservation object, if it has one. */
  get(buf: DmaBuf): SharedResv | undefined {
    return this.#byBuf.get(buf);
  }

  /** The buffer's reservation object, made (and its CPU-access hook installed) on first use. */
  for(buf: DmaBuf): SharedResv {
    let r = this.#byBuf.get(buf);
    if (!r) {
      this.prune();
      r = new SharedResv(this.#domid);
      this.#byBuf.set(buf, r);
      buf.cpuSync = this.#cpuSync;
    }
    return r;
  }

  /** Forgets the reservation objects of released buffers. */
  prune(): void {
    for (const [buf, r] of this.#byBuf) {
      if (buf.state !== DmaBufState.Released) continue;
      this.#byBuf.delete(buf);
      r.drop();
      for (const k of Object.keys(this.#retired) as Array<keyof SharedResvCounters>) this.#retired[k] += r.counters[k];
    }
  }

  /** Removes every CPU-access hook this registry installed (the layer unloads). */
  detachAll(): void {
    for (const [buf, r] of this.#byBuf) {
      if (buf.cpuSync === this.#cpuSync) buf.cpuSync = undefined;
      r.drop();
    }
    this.#byBuf.clear();
  }

  /** Totals. */
  stats(): ResvRegistryStats {
    this.prune();
    const s: ResvRegistryStats = { ...this.#retired, buffers: this.#byBuf.size, entries: 0, pending: 0 };
    for (const r of this.#byBuf.values()) {
      for (const k of Object.keys(this.#retired) as Array<keyof SharedResvCounters>) s[k] += r.counters[k];
      const { entries, pending } = r.size();
      s.entries += entries;
      s.pending += pending;
    }
    return s;
  }
}
