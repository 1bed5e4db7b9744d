/**
 * Cross-VM port of the sync selftests' multi-producer single-consumer
 * stress (sync_stress_consumer.c): n producer VMs and one consumer VM, a
 * counter in a page of the consumer's RAM that every producer maps
 * read-write, one timeline per VM.
 *
 *   producer k, iteration it = 1..N:
 *     export its point it (pending) to the consumer (cookie it);
 *     if it > 1, wait for the consumer's point it-1;
 *     add 1 to the counter (atomic, in shared memory); signal its point it.
 *   consumer, iteration it = 1..N:
 *     export its point it (pending) to every producer (cookie it), unless it = N;
 *     merge the producers' points it, wait for the merge;
 *     the counter must be exactly n * it; signal its point it.
 *
 * The counter check proves both the fence ordering across VMs and that a
 * write made before a signal is visible to a VM that has seen the signal.
 * A status other than "signalled" ends the run with a report (the original
 * allows no ERROR status either).
 */
import type { ForeignMapping } from '../src/guest/foreign-mapping.ts';
import type { GuestKernel } from '../src/guest/kernel.ts';
import { revokeAndFree } from '../src/guest/grant-release.ts';
import { mergeFences } from '../src/fence/unwrap.ts';
import { PAGE_SIZE } from '../protocol/limits.ts';
import { errnoName } from '../src/fence/errno.ts';
import type { FenceHost } from '../src/fence-remote/fence-host.ts';
import type { SharedTimeline } from '../src/fence-remote/shared-timeline.ts';

/** How a stress run ended. */
export interface MpscResult {
  role: 'producer' | 'consumer';
  iterations: number;
  elapsedMs: number;
  /** Counter values the consumer found wrong. */
  mismatches: number;
  /** The counter at the end (as this VM read it). */
  counter: number;
  error?: { iteration: number; message: string };
}

async function waitOk(host: FenceHost, src: number, cookie: number, timeoutMs: number): Promise<void> {
  const file = await host.takeImport(src, cookie, timeoutMs);
  if (await file.fence.wait(timeoutMs) === 0) throw new Error(`fence ${cookie} of d${src} did not signal within ${timeoutMs} ms`);
  const status = file.fence.getStatus();
  if (status !== 1) throw new Error(`fence ${cookie} of d${src} signalled with ${errnoName(status)}`);
}

/** One VM's part of the stress. */
export class MpscStress {
  /** Grant refs of the counter page, by producer domain (consumer only). */
  readonly refs: Record<number, number>;
  readonly #host: FenceHost;
  readonly #kernel: GuestKernel;
  readonly #tl: SharedTimeline;
  readonly #counter: Int32Array;
  readonly #role: 'producer' | 'consumer';
  readonly #peers: number[];
  readonly #frame: number | undefined;
  readonly #mapping: ForeignMapping | undefined;
  #closed = false;

  private constructor(role: 'producer' | 'consumer', host: FenceHost, kernel: GuestKernel, peers: number[], counter: Int32Array, refs: Record<number, number>, frame?: number, mapping?: ForeignMapping) {
    this.#role = role;
    this.#host = host;
    this.#kernel = kernel;
    this.#peers = peers;
    this.#counter = counter;
    this.refs = refs;
    this.#frame = frame;
    this.#mapping = mapping;
    this.#tl = host.createTimeline(`mpsc-${role}`);
  }

  /** The consumer: allocates the counter page and grants it read-write to every producer. */
  static async consumer(host: FenceHost, kernel: GuestKernel, producers: number[]): Promise<MpscStress> {
    const [frame] = kernel.allocator.alloc(1);
    const refs: Record<number, number> = {};
    for (const p of producers) refs[p] = await kernel.grants.grantAccess(p, frame!, false);
    const page = kernel.ram.page(frame!);
    return new MpscStress('consumer', host, kernel, producers, new Int32Array(page.buffer, page.byteOffset, PAGE_SIZE / 4), refs, frame);
  }

  /** A producer: maps the consumer's counter page read-write. */
  static async producer(host: FenceHost, kernel: GuestKernel, consumer: number, ref: number): Promise<MpscStress> {
    const mapping = await kernel.mapper.mapGrants(consumer, [ref], { readonly: false });
    return new MpscStress('producer', host, kernel, [consumer], new Int32Array(mapping.view), {}, undefined, mapping);
  }

  /** Runs `iterations` iterations of this VM's role. */
  async run(iterations: number, timeoutMs = 10_000): Promise<MpscResult> {
    const t0 = performance.now();
    let mismatches = 0;
    let it = 1;
    const sends: Promise<void>[] = [];
    try {
      for (; it <= iterations; it++) {
        if (this.#role === 'producer') {
          const consumer = this.#peers[0]!;
          sends.push(this.#host.sendExport(await this.#host.prepareExport(consumer, this.#tl.createFence(it)), { cookie: it }));
          if (it > 1) await waitOk(this.#host, consumer, it - 1, timeoutMs);
          Atomics.add(this.#counter, 0, 1);
          this.#tl.signal(it);
        } else {
          if (it < iterations) {
            const point = this.#tl.createFence(it);
            for (const p of this.#peers) sends.push(this.#host.sendExport(await this.#host.prepareExport(p, point), { cookie: it }));
          }
          const files = await Promise.all(this.#peers.map((p) => this.#host.takeImport(p, it, timeoutMs)));
          const merged = mergeFences(...files.map((f) => f.fence));
          if (await merged.wait(timeoutMs) === 0) throw new Error(`producers' points ${it} did not signal within ${timeoutMs} ms`);
          if (merged.getStatus() !== 1) throw new Error(`producers' points ${it} signalled with ${errnoName(merged.getStatus())}`);
          if (Atomics.load(this.#counter, 0) !== this.#peers.length * it) mismatches++;
          this.#tl.signal(it);
        }
        while (sends.length > 4) await sends.shift();
      }
      await Promise.all(sends);
      return { role: this.#role, iterations: it - 1, elapsedMs: performance.now() - t0, mismatches, counter: Atomics.load(this.#counter, 0) };
    } catch (e) {
      for (const s of sends) s.catch(() => undefined);
      return {
        role: this.#role, iterations: it - 1, elapsedMs: performance.now() - t0, mismatches, counter: Atomics.load(this.#counter, 0),
        error: { iteration: it, message: (e as Error).message },
      };
    }
  }

  /** Releases the timeline and the counter page (mapping, or grants and page once unmapped). */
  async close(graceMs = 5000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#host.destroyTimeline(this.#tl);
    await this.#mapping?.unmap();
    if (this.#frame !== undefined) {
      const release = revokeAndFree(this.#kernel.grants, Object.values(this.refs), this.#kernel.allocator, [this.#frame]);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([release.done, new Promise<void>((r) => { timer = setTimeout(r, graceMs); })]);
      clearTimeout(timer);
    }
  }
}
