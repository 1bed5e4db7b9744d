/**
 * Implicit synchronisation of CPU access across VMs (SPEC.md 11A.10): what
 * dma_buf_begin_cpu_access does with dma_buf.resv, for both sides of a
 * shared buffer.
 *
 * - The exporter's own buffer: wait for the buffer's reservation object
 *   locally (dma_resv_usage_rw: a write waits for every reader and writer,
 *   a read for the writers). Importers' fences in it are observed through
 *   their timeline pages, so nothing is sent.
 * - An importer's fd: ask the exporter for the same snapshot
 *   (DMABUF_RESV_GET), then wait locally for the fences it names.
 *
 * Both wait at most `timeoutMs` in all (Linux waits without limit; a VM
 * must not hang on a peer that never signals) and then fail with
 * ERR_TIMEOUT, naming what is still pending. As in Linux, a fence that
 * signalled with an error does not fail the access.
 */
import { ProtocolError } from '../../../protocol/errors.ts';
import type { DmaDirection } from '../../../protocol/messages/dmabuf.ts';
import type { CpuAccessSync, DmaBuf } from '../../dmabuf/dma-buf.ts';
import type { DmaFence } from '../../fence/dma-fence.ts';
import { usageRw } from '../../fence/dma-resv.ts';
import { isImportedFd, type ResvClient } from './resv-client.ts';
import type { ResvRegistry } from './resv-registry.ts';
import { isWriteAccess, usageToWire } from './usage.ts';

/** Counters of implicit waits. */
export interface CpuSyncStats {
  /** begin_cpu_access calls that looked for fences. */
  begins: number;
  /** Of those, how many found fences still pending and waited. */
  waited: number;
  /** Waits that ran out of time. */
  timeouts: number;
  /** Longest wait, ms. */
  maxWaitMs: number;
}

/** The stats both sides share, and the wait itself. */
class WaitCounter {
  readonly stats: CpuSyncStats = { begins: 0, waited: 0, timeouts: 0, maxWaitMs: 0 };
  #untilWaited: Array<{ count: number; resolve: () => void }> = [];

  /** Resolves once `count` waits have begun (at once if they have): the event a caller can wait for instead of a delay. */
  untilWaited(count: number): Promise<void> {
    if (this.stats.waited >= count) return Promise.resolve();
    return new Promise((resolve) => this.#untilWaited.push({ count, resolve }));
  }

  /** Waits for each fence in turn with the time left of `timeoutMs` (counted from `t0`); ERR_TIMEOUT if some are still pending. */
  async wait(fences: readonly DmaFence[], timeoutMs: number, t0: number, what: string): Promise<void> {
    const pending = fences.filter((f) => !f.isSignaled());
    if (pending.length === 0) return;
    this.stats.waited++;
    const due = this.#untilWaited.filter((w) => w.count <= this.stats.waited);
    this.#untilWaited = this.#untilWaited.filter((w) => w.count > this.stats.waited);
    for (const w of due) w.resolve();
    try {
      for (const f of pending) {
        const left = timeoutMs - (performance.now() - t0);
        if (left <= 0 || (await f.wait(left)) === 0) {
          const still = pending.filter((p) => !p.isSignaled());
          this.stats.timeouts++;
          throw new ProtocolError('ERR_TIMEOUT', `implicit sync: ${what} waited ${Math.round(performance.now() - t0)} ms; ${still.length} fence(s) still pending: ${still.slice(0, 4).map((p) => p.toString()).join(', ')}${still.length > 4 ? ', ...' : ''}`);
        }
      }
    } finally {
      this.stats.maxWaitMs = Math.max(this.stats.maxWaitMs, performance.now() - t0);
    }
  }
}

/** Implicit sync of the exporter's own buffers, through their local reservation objects. */
export class ExporterCpuSync implements CpuAccessSync {
  readonly #counter = new WaitCounter();
  #registry: ResvRegistry | undefined;
  readonly #defaultTimeoutMs: number;

  constructor(defaultTimeoutMs: number) {
    this.#defaultTimeoutMs = defaultTimeoutMs;
  }

  /** Connects the registry whose buffers this hook serves (they are made with the hook, hence the two steps). */
  attach(registry: ResvRegistry): void {
    this.#registry = registry;
  }

  get stats(): CpuSyncStats {
    return { ...this.#counter.stats };
  }

  /** Resolves once `count` begin_cpu_access calls have found fences pending and begun to wait. */
  untilWaited(count: number): Promise<void> {
    return this.#counter.untilWaited(count);
  }

  async waitForCpuAccess(buf: DmaBuf, dir: DmaDirection, timeoutMs: number | undefined): Promise<void> {
    const resv = this.#registry?.get(buf);
    if (!resv) return;
    this.#counter.stats.begins++;
    const t0 = performance.now();
    const fences = resv.pending(usageRw(isWriteAccess(dir))).map((p) => p.fence);
    await this.#counter.wait(fences, timeoutMs ?? this.#defaultTimeoutMs, t0, `begin_cpu_access(${dir}) on ${buf.name}`);
  }
}

/** Implicit sync of this domain's fds on imports, through the exporter's reservation objects. */
export class ImporterCpuSync implements CpuAccessSync {
  readonly #counter = new WaitCounter();
  readonly #client: ResvClient;
  readonly #defaultTimeoutMs: number;

  constructor(client: ResvClient, defaultTimeoutMs: number) {
    this.#client = client;
    this.#defaultTimeoutMs = defaultTimeoutMs;
  }

  get stats(): CpuSyncStats {
    return { ...this.#counter.stats };
  }

  /** Resolves once `count` begin_cpu_access calls have found fences pending and begun to wait. */
  untilWaited(count: number): Promise<void> {
    return this.#counter.untilWaited(count);
  }

  async waitForCpuAccess(buf: DmaBuf, dir: DmaDirection, timeoutMs: number | undefined): Promise<void> {
    if (!isImportedFd(buf)) return;
    this.#counter.stats.begins++;
    const limit = timeoutMs ?? this.#defaultTimeoutMs;
    const t0 = performance.now();
    const usage = usageToWire(usageRw(isWriteAccess(dir)));
    // The request counts against the same budget as the wait.
    const fences = await this.#client.get(buf, usage, Number.isFinite(limit) ? Math.max(1, Math.ceil(limit)) : undefined);
    await this.#counter.wait(fences.map((f) => f.fence), limit, t0, `begin_cpu_access(${dir}) on ${buf.name}`);
  }
}
