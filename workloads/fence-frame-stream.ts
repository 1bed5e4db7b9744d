/**
 * A two-VM producer/consumer over a ring of shared buffers, synchronised
 * only by explicit cross-VM fences (the Wayland explicit-sync shape):
 *
 *   producer, frame i, buffer i % n:
 *     1. if i >= n: take the consumer's release fence of frame i-n and wait for it;
 *     2. create its own "ready" point i+1 and export it, still pending (cookie i);
 *     3. write the frame (payload, then header), 4. signal point i+1.
 *   consumer, frame i:
 *     1. create its "release" point i+1 and export it, still pending (cookie i);
 *     2. take the producer's ready fence of frame i and wait for it;
 *     3. check the frame (number, checksum), 4. signal point i+1.
 *
 * The buffers are the producer's pages granted read-only to the consumer
 * (kernel-level grants; workloads/buffer-stream.ts is the same stream over
 * hyper_dmabuf buffers).
 * Producer and consumer run in different processes, so a broken fence would
 * show up as a torn or stale frame. A fence error, a timeout or a dead peer
 * ends the run with a report, never a hang.
 */
import { PAGE_SIZE } from '../protocol/limits.ts';
import { revokeAndFree } from '../src/guest/grant-release.ts';
import type { ForeignMapping } from '../src/guest/foreign-mapping.ts';
import type { GuestKernel } from '../src/guest/kernel.ts';
import { errnoName } from '../src/fence/errno.ts';
import type { FenceHost } from '../src/fence-remote/fence-host.ts';
import type { SharedTimeline } from '../src/fence-remote/shared-timeline.ts';
import { runFrameLoop, StopRun, type RunError } from './frame-loop.ts';
import { checkFrame, Digest, writeFrame } from './frame-pattern.ts';

/** Role of one side. */
export type FrameRole = 'producer' | 'consumer';

/** Options of a run. */
export interface FrameRunOptions {
  /** Frames to stream. */
  frames: number;
  /** Longest wait for one fence or import (ms). */
  waitTimeoutMs?: number;
  /** Exports in flight before waiting for the oldest answer. */
  window?: number;
  /**
   * Producer only: at this frame, after exporting its still-pending fence
   * and overwriting half the buffer, stall for `stallMs` before finishing
   * (to kill the producer in the middle of a frame).
   */
  stallAt?: number;
  /** How long the stall lasts (default 60 s). */
  stallMs?: number;
}

/** How a run ended. */
export interface FrameRunResult {
  role: FrameRole;
  /** Frames fully handled. */
  frames: number;
  elapsedMs: number;
  /** Frames whose content was wrong (consumer only). */
  torn: number;
  /** FNV of every frame checksum, in order: producer and consumer must agree. */
  digest: string;
  /** Why the run stopped early. */
  error?: RunError;
  /** Largest single fence wait (ms). */
  maxWaitMs: number;
}

interface Ring {
  readonly words: Uint32Array[];
  readonly wordsPerBuffer: number;
}

async function waitImport(host: FenceHost, peer: number, cookie: number, frame: number, timeoutMs: number): Promise<number> {
  let file;
  try {
    file = await host.takeImport(peer, cookie, timeoutMs);
  } catch (e) {
    throw new StopRun(frame, (e as { code?: string }).code ?? 'ERR_INTERNAL', (e as Error).message);
  }
  const t0 = performance.now();
  const ret = await file.fence.wait(timeoutMs);
  const waited = performance.now() - t0;
  if (ret === 0) throw new StopRun(frame, 'ERR_TIMEOUT', `fence of frame ${frame} did not signal within ${timeoutMs} ms`);
  const status = file.fence.getStatus();
  if (status < 0) throw new StopRun(frame, 'ERR_FENCE', `fence of frame ${frame} signalled with ${errnoName(status)}`, status);
  return waited;
}

/** One side of a frame stream. */
export class FrameStream {
  readonly role: FrameRole;
  readonly peer: number;
  /** Grant refs of the buffers (producer), one array per buffer. */
  readonly refs: Uint32Array[];
  readonly #host: FenceHost;
  readonly #kernel: GuestKernel;
  readonly #tl: SharedTimeline;
  readonly #ring: Ring;
  readonly #frames: Uint32Array[];
  readonly #mappings: ForeignMapping[];
  #next = 0;
  #closed = false;

  private constructor(role: FrameRole, host: FenceHost, kernel: GuestKernel, peer: number, ring: Ring, frames: Uint32Array[], refs: Uint32Array[], mappings: ForeignMapping[]) {
    this.role = role;
    this.peer = peer;
    this.#host = host;
    this.#kernel = kernel;
    this.#ring = ring;
    this.#frames = frames;
    this.refs = refs;
    this.#mappings = mappings;
    this.#tl = host.createTimeline(role === 'producer' ? 'frames-ready' : 'frames-release');
  }

  /** Producer: allocates `buffers` buffers of `pages` pages and grants them read-only to `peer`. */
  static async producer(host: FenceHost, kernel: GuestKernel, peer: number, buffers = 3, pages = 16): Promise<FrameStream> {
    const frames: Uint32Array[] = [];
    const refs: Uint32Array[] = [];
    try {
      for (let b = 0; b < buffers; b++) {
        const f = kernel.allocator.alloc(pages);
        frames.push(f);
        refs.push(await kernel.grants.grantAccessMany(peer, f, true));
      }
    } catch (e) {
      refs.forEach((r, i) => revokeAndFree(kernel.grants, r, kernel.allocator, frames[i]));
      if (frames.length > refs.length) kernel.allocator.free(frames[frames.length - 1]!);
      throw e;
    }
    const words = frames.map((f) => contiguousWords(kernel, f));
    return new FrameStream('producer', host, kernel, peer, { words, wordsPerBuffer: (pages * PAGE_SIZE) / 4 }, frames, refs, []);
  }

  /** Consumer: maps the producer's buffers read-only (one batched map per buffer). */
  static async consumer(host: FenceHost, kernel: GuestKernel, peer: number, refs: Uint32Array[]): Promise<FrameStream> {
    const mappings: ForeignMapping[] = [];
    try {
      for (const r of refs) mappings.push(await kernel.mapper.mapGrants(peer, r, { readonly: true }));
    } catch (e) {
      await Promise.allSettled(mappings.map((m) => m.unmap()));
      throw e;
    }
    const words = mappings.map((m) => new Uint32Array(m.view));
    return new FrameStream('consumer', host, kernel, peer, { words, wordsPerBuffer: words[0]?.length ?? 0 }, [], [], mappings);
  }

  /** Streams `frames` more frames (continuing the frame numbers of earlier runs). */
  async run(options: FrameRunOptions): Promise<FrameRunResult> {
    const timeoutMs = options.waitTimeoutMs ?? 10_000;
    const n = this.#ring.words.length;
    const digest = new Digest();
    let torn = 0;
    let maxWaitMs = 0;
    const run = await runFrameLoop({ first: this.#next, frames: options.frames, window: options.window ?? 3 }, async (i, send) => {
      const words = this.#ring.words[i % n]!;
      if (this.role === 'producer') {
        if (i >= n) maxWaitMs = Math.max(maxWaitMs, await waitImport(this.#host, this.peer, i - n, i, timeoutMs));
        send((await this.#exportPoint(i)).sent, 'export');
        if (i === options.stallAt) {
          words.fill(0xdeadbeef, 0, words.length >>> 1);
          await new Promise((r) => setTimeout(r, options.stallMs ?? 60_000));
        }
        digest.add(writeFrame(words, i));
      } else {
        send((await this.#exportPoint(i)).sent, 'export');
        maxWaitMs = Math.max(maxWaitMs, await waitImport(this.#host, this.peer, i, i, timeoutMs));
        const check = checkFrame(words, i);
        if (!check.ok) torn++;
        digest.add(check.checksum);
      }
      this.#tl.signal(i + 1);
    });
    this.#next = run.next;
    return {
      role: this.role, frames: run.frames, elapsedMs: run.elapsedMs, torn, digest: digest.hex(), maxWaitMs,
      ...(run.error ? { error: run.error } : {}),
    };
  }

  /**
   * Releases everything: the timeline, and the mappings (consumer) or the
   * grants and pages (producer). The producer waits up to `graceMs` for the
   * consumer to unmap; after that the release completes in the background.
   * @returns true if everything was released within the grace period
   */
  async close(graceMs = 5000): Promise<boolean> {
    if (this.#closed) return true;
    this.#closed = true;
    await this.#host.destroyTimeline(this.#tl);
    await Promise.allSettled(this.#mappings.map((m) => m.unmap()));
    const releases = this.refs.map((r, b) => revokeAndFree(this.#kernel.grants, r, this.#kernel.allocator, this.#frames[b]));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), graceMs); });
    try {
      return await Promise.race([Promise.all(releases.map((r) => r.done)).then(() => true), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  // Creates point i+1, holds its slot while pending, and starts sending it; resolves once the hold
  // is taken, with the send still in flight (boxed: an async function would flatten a bare promise).
  async #exportPoint(i: number): Promise<{ sent: Promise<void> }> {
    const prepared = await this.#host.prepareExport(this.peer, this.#tl.createFence(i + 1));
    return { sent: this.#host.sendExport(prepared, { cookie: i }) };
  }
}

// A buffer's pages as one Uint32Array over own RAM; the heap allocator gives a buffer of up to 256
// pages as one contiguous chunk, which is what the consumer's single mapping shows in ref order.
function contiguousWords(kernel: GuestKernel, frames: Uint32Array): Uint32Array {
  const first = frames[0]!;
  for (let i = 1; i < frames.length; i++) {
    if (frames[i] !== first + i) throw new RangeError('frame stream buffers must be physically contiguous (allocate at most 256 pages per buffer)');
  }
  const bytes = kernel.ram.pages(first, frames.length);
  return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}
