/**
 * The steps the `fences` and `move` scenarios share: set up the buffer
 * stream (dmabuf-sync-commands.ts: a ring of hyper_dmabuf buffers exported
 * by the producer, an fd per buffer in the consumer), run both sides at
 * once, check them against each other, and release everything with a leak
 * check of both VMs.
 */
import type { BufferRunResult } from '../../../workloads/buffer-stream.ts';
import type { ScenarioContext } from '../context.ts';

/** What `dmabuf.sync.stream.run` answers. */
export type StreamResult = BufferRunResult;

/** The two sides of a stream, by stream id. */
export interface StreamIds {
  producer: number;
  consumer: number;
  hids: string[];
}

/** Time a step running `frames` frames may take: generous, the machine may be loaded. */
export function streamTimeoutMs(frames: number): number {
  return Math.max(120_000, frames * 40);
}

/** Sets the stream up: the producer allocates and exports the ring, the consumer opens an fd per buffer. */
export async function setupStream(ctx: ScenarioContext, opts: { buffers: number; bytes: number; movable: boolean; sync: string }): Promise<StreamIds> {
  const p = await ctx.step({
    do: 'call', in: 'producer', cmd: 'dmabuf.sync.stream.setup', name: `producer: ${opts.buffers} ${opts.movable ? 'movable ' : ''}buffers of ${opts.bytes} B exported to the consumer`,
    args: { role: 'producer', peer: '@domid:consumer', buffers: opts.buffers, bytes: opts.bytes, movable: opts.movable },
  });
  const hids = p.hids as string[];
  const c = await ctx.step({
    do: 'call', in: 'consumer', cmd: 'dmabuf.sync.stream.setup', name: `consumer: an fd on each buffer (${opts.sync} remote sync)`,
    args: { role: 'consumer', peer: '@domid:producer', hids, sync: opts.sync },
  });
  return { producer: p.stream as number, consumer: c.stream as number, hids };
}

/** Runs `frames` frames on both sides at once; each side's result is a check, and so is their agreement. */
export async function runStream(ctx: ScenarioContext, ids: StreamIds, frames: number, waitTimeoutMs: number): Promise<{ producer: StreamResult; consumer: StreamResult; ms: number }> {
  const timeoutMs = streamTimeoutMs(frames);
  const t0 = performance.now();
  const [rp, rc] = await Promise.all([
    ctx.step({ do: 'call', in: 'producer', cmd: 'dmabuf.sync.stream.run', name: `producer: ${frames} frames, each write after an implicit wait for the reader`, args: { stream: ids.producer, frames, waitTimeoutMs }, timeoutMs, expect: { frames, torn: 0 } }),
    ctx.step({ do: 'call', in: 'consumer', cmd: 'dmabuf.sync.stream.run', name: `consumer: ${frames} frames checked, each read after an implicit wait for the writer`, args: { stream: ids.consumer, frames, waitTimeoutMs, progressMs: 500 }, timeoutMs, expect: { frames, torn: 0, implicitMisses: 0 } }),
  ]) as unknown as [StreamResult, StreamResult];
  const ms = performance.now() - t0;
  ctx.check('producer and consumer agree on every frame (digest of the per-frame checksums)', rp.digest === rc.digest, `${rp.digest} / ${rc.digest}`);
  ctx.check('reservation objects stay small (the add rule recycles signalled and superseded fences)', rp.maxResvEntries <= 2, `at most ${rp.maxResvEntries} entries per buffer`);
  return { producer: rp, consumer: rc, ms };
}

/** Closes both sides (consumer first: its fds go, then the producer's exports can be freed) and checks nothing is left. */
export async function closeStream(ctx: ScenarioContext, ids: StreamIds): Promise<void> {
  await ctx.step({ do: 'call', in: 'consumer', cmd: 'dmabuf.sync.stream.close', name: 'consumer: views unmapped, fds released, timeline destroyed', args: { stream: ids.consumer }, expect: { released: true } });
  await ctx.step({ do: 'call', in: 'producer', cmd: 'dmabuf.sync.stream.close', name: 'producer: timeline destroyed, buffers unexported and freed', args: { stream: ids.producer, graceMs: 20_000 }, expect: { released: true } });
  for (const vm of ['producer', 'consumer']) {
    await ctx.step({ do: 'call', in: vm, cmd: 'fence.stats', name: `${vm}: no timeline, share, slot count or imported fence left`, expect: { owner: { timelines: 0, slotHolds: 0, grantsLive: 0 }, observer: { timelines: 0, pendingPoints: 0 }, kernel: { mappings: 0, granted: 0 } } });
    await ctx.step({ do: 'call', in: vm, cmd: 'dmabuf.sync.stats', name: `${vm}: no pending fence in any reservation object`, expect: { resv: { pending: 0 }, streams: 0, prepared: 0 } });
    await ctx.step({ do: 'call', in: vm, cmd: 'dmabuf.stats', name: `${vm}: every page back, no grant or mapping left`, expect: { kernel: { usedPages: 0, grants: { granted: 0, deferred: 0 }, mapper: { liveMappings: 0 } } } });
  }
}

/** The stream's figures, for the result's stats. */
export function streamStats(r: { producer: StreamResult; consumer: StreamResult; ms: number }): Record<string, unknown> {
  return {
    frames: r.consumer.frames,
    elapsedMs: Math.round(r.ms),
    framesPerSecond: Math.round((r.consumer.frames / r.ms) * 1000),
    usPerFrame: Math.round((r.ms / Math.max(1, r.consumer.frames)) * 1000),
    tornFrames: r.consumer.torn,
    implicitMisses: r.consumer.implicitMisses,
    implicitWaits: { producer: r.producer.implicitWaits, consumer: r.consumer.implicitWaits },
    longestWaitMs: Math.round(Math.max(r.producer.maxWaitMs, r.consumer.maxWaitMs) * 10) / 10,
    maxResvEntries: r.producer.maxResvEntries,
    viewRefreshes: { producer: r.producer.viewRefreshes, consumer: r.consumer.viewRefreshes },
    digest: r.consumer.digest,
  };
}
