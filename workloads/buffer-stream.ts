/**
 * A two-VM producer/consumer over a ring of hyper_dmabuf buffers, where
 * every access to a buffer is synchronised through the buffer's own
 * reservation object, and explicit fences say which frame is where (the
 * Wayland explicit-sync shape, on shared buffers):
 *
 *   producer (the exporter), frame i, buffer b = i % n:
 *     1. if i >= n: take the consumer's release sync_file of frame i-n
 *        (explicit: it says the consumer has added its read fence to b)
 *        and import it into b (READ);
 *     2. begin_cpu_access(write) on b: the implicit wait for every reader
 *        and writer of b, i.e. the consumer's read of frame i-n;
 *     3. add its "ready" point i+1 to b as a WRITE fence, export a
 *        sync_file from b for readers (it holds the ready point), send it
 *        (cookie i) still pending;
 *     4. write the frame (payload, then header), end_cpu_access, signal i+1.
 *   consumer (the importer, through an fd per buffer), frame i:
 *     1. take the producer's sync_file of frame i (explicit: frame i is in b);
 *     2. add its "release" point i+1 to b as a READ fence (DMABUF_RESV_ADD),
 *        and, at the same time, begin_cpu_access(read) on b: the implicit
 *        wait for b's writers (DMABUF_RESV_GET), i.e. the ready point;
 *     3. send the release point (cookie i), still pending;
 *     4. check the frame (number, checksum), end_cpu_access, signal i+1.
 *
 * The consumer adds its read fence only after it took frame i's notice, so
 * the producer's begin_cpu_access of frame i never waits for it (that would
 * be a cycle); and the producer begins frame i+n only after the release
 * sync_file of frame i came, which is sent after the read fence was added,
 * so that begin_cpu_access waits for it. A read that the implicit wait let
 * in before the explicit ready fence signalled counts as a miss (must be 0);
 * a wrong frame as torn. A fence error, a timeout or a dead peer ends the
 * run with a report, never a hang.
 */
import { PAGE_SIZE } from '../protocol/limits.ts';
import type { DmaBuf } from '../src/dmabuf/dma-buf.ts';
import type { SystemHeapPriv } from '../src/dmabuf/system-heap.ts';
import type { SyncFile } from '../src/fence/sync-file.ts';
import { errnoName } from '../src/fence/errno.ts';
import type { FenceHost } from '../src/fence-remote/fence-host.ts';
import type { SharedTimeline } from '../src/fence-remote/shared-timeline.ts';
import type { HyperDmabuf } from '../src/hyper-dmabuf/driver.ts';
import { formatHid, hidKey, parseHid, type Hid } from '../src/hyper-dmabuf/hid.ts';
import type { SyncMode } from '../src/hyper-dmabuf/options.ts';
import type { DmabufSync } from '../src/hyper-dmabuf/sync/dmabuf-sync.ts';
import type { ImportedFd } from '../src/hyper-dmabuf/sync/resv-client.ts';
import { CpuView } from './cpu-view.ts';
import { codeOf, runFrameLoop, StopRun, type RunError, type SendInFlight } from './frame-loop.ts';
import { checkFrame, Digest, writeFrame } from './frame-pattern.ts';

/** Role of one side. */
export type BufferStreamRole = 'producer' | 'consumer';

/** The layers a side runs on. */
export interface BufferStreamDeps {
  readonly driver: HyperDmabuf;
  readonly fences: FenceHost;
  readonly sync: DmabufSync;
}

/** Producer setup. */
export interface ProducerOptions {
  /** Buffers in the ring (default 3). */
  buffers?: number;
  /** Bytes per buffer (default 64 KiB). */
  bytes?: number;
  /** Allocate movable buffers (the exporter may move them while streaming). */
  movable?: boolean;
}

/** Consumer setup. */
export interface ConsumerOptions {
  /** How the fds mirror their operations to the exporter (default 'ack': needed when the buffers move). */
  sync?: SyncMode;
}

/** Options of a run. */
export interface BufferRunOptions {
  /** Frames to stream. */
  frames: number;
  /** Longest wait for one import or one implicit wait (ms, default 10 s). */
  waitTimeoutMs?: number;
  /** Explicit exports in flight before waiting for the oldest answer (default 3). */
  window?: number;
  /** Producer only: at this frame, after exporting its pending fence and overwriting half the buffer, stall. */
  stallAt?: number;
  /** How long the stall lasts (default 60 s). */
  stallMs?: number;
  /** Called after each frame with the frames done so far in this run (progress reports). */
  onFrame?: (done: number) => void;
}

/** How a run ended. */
export interface BufferRunResult {
  role: BufferStreamRole;
  frames: number;
  elapsedMs: number;
  /** Frames whose content was wrong (consumer). */
  torn: number;
  /** Reads the implicit wait let in before the frame's explicit fence had signalled (consumer; must be 0). */
  implicitMisses: number;
  /** begin_cpu_access calls whose implicit wait found a fence still pending. */
  implicitWaits: number;
  /** FNV of every frame checksum in order: producer and consumer must agree. */
  digest: string;
  /** Longest single wait (import or implicit), ms. */
  maxWaitMs: number;
  /** Most entries one buffer's reservation object held (producer): the rule keeps it small. */
  maxResvEntries: number;
  /** CPU views fetched again after moves. */
  viewRefreshes: number;
  error?: RunError;
}

/** One side of a buffer stream. */
export class BufferStream {
  readonly role: BufferStreamRole;
  readonly peer: number;
  /** The ring's buffer ids, as text. */
  readonly hids: string[];
  readonly #deps: BufferStreamDeps;
  readonly #bufs: DmaBuf[];
  readonly #views: CpuView[];
  readonly #tl: SharedTimeline;
  #next = 0;
  #closed = false;
  /** Why close() could not release everything, if it could not. */
  #closeError: { code: string; message: string } | undefined;
  /** Frame the run loop has reached (started), and who waits for a later one. */
  #reached = -1;
  #frameWaiters: Array<{ frame: number; resolve: () => void }> = [];

  private constructor(role: BufferStreamRole, deps: BufferStreamDeps, peer: number, hids: Hid[], bufs: DmaBuf[]) {
    this.role = role;
    this.peer = peer;
    this.hids = hids.map(hidKey);
    this.#deps = deps;
    this.#bufs = bufs;
    this.#views = bufs.map((b) => new CpuView(b));
    this.#tl = deps.fences.createTimeline(role === 'producer' ? 'frames-ready' : 'frames-release');
  }

  /** Producer: allocates the ring in own RAM and exports each buffer to `peer` (read-only). */
  static async producer(deps: BufferStreamDeps, peer: number, options: ProducerOptions = {}): Promise<BufferStream> {
    const n = options.buffers ?? 3;
    const bytes = options.bytes ?? 16 * PAGE_SIZE;
    const bufs: Array<DmaBuf<SystemHeapPriv>> = [];
    const hids: Hid[] = [];
    try {
      for (let b = 0; b < n; b++) {
        const buf = deps.driver.heap.alloc(bytes, { movable: options.movable ?? false, name: `ring${b}` });
        bufs.push(buf);
        hids.push(await deps.driver.exportRemote(buf, peer, { access: 'ro' }));
      }
    } catch (e) {
      await Promise.allSettled(hids.map((h) => deps.driver.unexport(h)));
      await Promise.allSettled(bufs.map((b) => b.put()));
      throw e;
    }
    return new BufferStream('producer', deps, peer, hids, bufs);
  }

  /** Consumer: opens an fd on each of the producer's buffers (the first one maps its pages). */
  static async consumer(deps: BufferStreamDeps, peer: number, hids: readonly string[], options: ConsumerOptions = {}): Promise<BufferStream> {
    const ids = hids.map(parseHid);
    const fds: DmaBuf[] = [];
    try {
      for (const hid of ids) fds.push(await deps.driver.exportFd(hid, { sync: options.sync ?? 'ack' }));
    } catch (e) {
      await Promise.allSettled(fds.map((f) => f.put()));
      throw e;
    }
    // The ring's NEW_IMPORT events were read by nobody: the stream is their reader.
    for (let k = 0; k < ids.length && deps.driver.tryReadEvent(); k++);
    return new BufferStream('consumer', deps, peer, ids, fds);
  }

  /** Resolves once the run loop has started frame `frame` (every earlier frame was handed to the pipeline). */
  whenFrame(frame: number): Promise<void> {
    if (this.#reached >= frame) return Promise.resolve();
    return new Promise((resolve) => this.#frameWaiters.push({ frame, resolve }));
  }

  #reach(frame: number): void {
    this.#reached = frame;
    const due = this.#frameWaiters.filter((w) => w.frame <= frame);
    this.#frameWaiters = this.#frameWaiters.filter((w) => w.frame > frame);
    for (const w of due) w.resolve();
  }

  /** Streams `frames` more frames (continuing the frame numbers of earlier runs). */
  async run(options: BufferRunOptions): Promise<BufferRunResult> {
    const timeoutMs = options.waitTimeoutMs ?? 10_000;
    const n = this.#bufs.length;
    const digest = new Digest();
    const stats = { torn: 0, implicitMisses: 0, maxWaitMs: 0, maxResvEntries: 0 };
    const waitedBefore = this.#implicitWaited();
    const loop = { first: this.#next, frames: options.frames, window: options.window ?? 3, ...(options.onFrame ? { onFrame: options.onFrame } : {}) };
    const run = await runFrameLoop(loop, async (i, send) => {
      this.#reach(i);
      const b = i % n;
      if (this.role === 'producer') await this.#produce(i, b, n, timeoutMs, stats, digest, send, options);
      else await this.#consume(i, b, timeoutMs, stats, digest, send);
    });
    this.#next = run.next;
    return {
      role: this.role, frames: run.frames, elapsedMs: run.elapsedMs, digest: digest.hex(), ...stats,
      implicitWaits: this.#implicitWaited() - waitedBefore,
      viewRefreshes: this.#views.reduce((s, v) => s + v.refreshes, 0), ...(run.error ? { error: run.error } : {}),
    };
  }

  /**
   * Releases everything: the consumer its views and fds; the producer its
   * timeline, then every export (waiting up to `graceMs` for each to be
   * released by the consumer) and its buffers.
   * @returns true if everything was released within the grace period
   */
  async close(graceMs = 5000): Promise<boolean> {
    if (this.#closed) return true;
    this.#closed = true;
    await Promise.allSettled(this.#views.map((v) => v.release()));
    await this.#deps.fences.destroyTimeline(this.#tl);
    if (this.role === 'consumer') {
      await Promise.allSettled(this.#bufs.map((f) => (f.state === 'live' ? f.put() : undefined)));
      return true;
    }
    const d = this.#deps.driver;
    const results = await Promise.allSettled(this.hids.map(async (text) => {
      const hid = parseHid(text);
      try {
        await d.unexport(hid);
      } catch (e) {
        // The consumer died: the driver already unexported and freed its exports (exporter.ts onPeerDied). An id
        // this stream exported cannot be unknown otherwise.
        if (codeOf(e) === 'ERR_UNKNOWN_BUFFER') return;
        throw e;
      }
      await d.waitReleased(hid, graceMs);
    }));
    await Promise.allSettled(this.#bufs.map((b) => (b.state === 'live' ? b.put() : undefined)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) this.#closeError = { code: codeOf(failed.reason), message: (failed.reason as Error)?.message ?? String(failed.reason) };
    return failed === undefined;
  }

  /** Why close() could not release everything (the first export's failure: e.g. its importer died), if it could not. */
  get closeError(): { code: string; message: string } | undefined {
    return this.#closeError;
  }

  async #produce(i: number, b: number, n: number, timeoutMs: number, stats: { maxWaitMs: number; maxResvEntries: number }, digest: Digest, send: SendInFlight, options: BufferRunOptions): Promise<void> {
    const { fences, sync } = this.#deps;
    const buf = this.#bufs[b]!;
    if (i >= n) {
      const release = await this.#take(i - n, i, timeoutMs, stats);
      await sync.importSyncFile(buf, release, 'read');
    }
    await this.#begin(buf, 'to_device', i, timeoutMs, stats);
    try {
      const ready = this.#tl.createFence(i + 1);
      await sync.addFence(buf, ready, 'write');
      const file = await sync.exportSyncFile(buf, 'read');
      const prepared = await fences.prepareExport(this.peer, file);
      send(fences.sendExport(prepared, { cookie: i }), 'export');
      stats.maxResvEntries = Math.max(stats.maxResvEntries, sync.registry.get(buf)?.resv.numFences ?? 0);
      const words = await this.#views[b]!.words();
      if (i === options.stallAt) {
        words.fill(0xdeadbeef, 0, words.length >>> 1);
        await new Promise((r) => setTimeout(r, options.stallMs ?? 60_000));
      }
      digest.add(writeFrame(words, i));
    } finally {
      await buf.endCpuAccess('to_device');
    }
    this.#tl.signal(i + 1);
  }

  async #consume(i: number, b: number, timeoutMs: number, stats: { torn: number; implicitMisses: number; maxWaitMs: number }, digest: Digest, send: SendInFlight): Promise<void> {
    const { fences, sync } = this.#deps;
    const fd = this.#bufs[b]! as ImportedFd;
    const ready = await this.#take(i, i, timeoutMs, stats);
    const release = this.#tl.createFence(i + 1);
    const [added, begun] = await Promise.allSettled([
      sync.addFence(fd, release, 'read'),
      this.#begin(fd, 'from_device', i, timeoutMs, stats),
    ]);
    if (begun.status === 'rejected') throw begun.reason;
    try {
      if (added.status === 'rejected') throw new StopRun(i, codeOf(added.reason), `adding the read fence: ${(added.reason as Error).message}`);
      const prepared = await fences.prepareExport(this.peer, release);
      send(fences.sendExport(prepared, { cookie: i }), 'export');
      const status = ready.fence.getStatus();
      if (status < 0) throw new StopRun(i, 'ERR_FENCE', `ready fence of frame ${i} signalled with ${errnoName(status)}`, status);
      if (status === 0) stats.implicitMisses++;
      const words = await this.#views[b]!.words();
      const check = checkFrame(words, i);
      if (!check.ok) stats.torn++;
      digest.add(check.checksum);
    } finally {
      await fd.endCpuAccess('from_device');
    }
    this.#tl.signal(i + 1);
  }

  // Takes the peer's sync_file of `cookie`, failing the run at `frame` if it does not come.
  async #take(cookie: number, frame: number, timeoutMs: number, stats: { maxWaitMs: number }): Promise<SyncFile> {
    const t = performance.now();
    try {
      return await this.#deps.fences.takeImport(this.peer, cookie, timeoutMs);
    } catch (e) {
      throw new StopRun(frame, codeOf(e), (e as Error).message);
    } finally {
      stats.maxWaitMs = Math.max(stats.maxWaitMs, performance.now() - t);
    }
  }

  // begin_cpu_access, with its implicit wait.
  async #begin(buf: DmaBuf, dir: 'to_device' | 'from_device', frame: number, timeoutMs: number, stats: { maxWaitMs: number }): Promise<void> {
    const t = performance.now();
    try {
      await buf.beginCpuAccess(dir, { timeoutMs });
    } catch (e) {
      throw new StopRun(frame, codeOf(e), `begin_cpu_access(${dir}) on ${buf.name}: ${(e as Error).message}`);
    } finally {
      stats.maxWaitMs = Math.max(stats.maxWaitMs, performance.now() - t);
    }
  }

  // Implicit waits so far that found a fence still pending, on this side's kind of buffer.
  #implicitWaited(): number {
    const cpu = this.#deps.sync.stats().cpu;
    return this.role === 'producer' ? cpu.exporter.waited : cpu.importer.waited;
  }


  /** Debug text. */
  toString(): string {
    return `${this.role} of ${this.hids.length} buffer(s) with dom${this.peer}: ${this.hids.map((h) => formatHid(parseHid(h))).join(', ')}`;
  }
}
