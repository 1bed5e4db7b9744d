/**
 * move_notify while streaming: the `fences` stream over movable buffers,
 * and while it runs the producer VM moves the buffers' backing pages
 * (dmabuf.move, SPEC.md 11.8) `moves` times, round robin. Each move waits
 * for the CPU accesses of both VMs to end (the consumer's fds mirror their
 * begin/end_cpu_access to the exporter, acknowledged), re-grants the new
 * pages and tells the consumer (DMABUF_MOVE_NOTIFY), which drops its
 * mapping and maps the new pages at its next access. No frame is lost or
 * corrupted, every move happens while frames flow, nothing leaks.
 */
import { PAGE_SIZE } from '../../../protocol/limits.ts';
import { defineScenario } from '../types.ts';
import { closeStream, runStream, setupStream, streamStats, streamTimeoutMs } from './fence-stream.ts';

export default defineScenario({
  name: 'move',
  description: 'the producer VM moves the pages of 3 streamed hyper_dmabuf buffers 100 times while the consumer VM reads frames with fences: no frame lost or corrupted',
  params: {
    frames: { type: 'integer', default: 1500, minimum: 1, maximum: 10_000_000, description: 'frames streamed while the pages move' },
    moves: { type: 'integer', default: 100, minimum: 0, maximum: 100_000, description: "moves of a buffer's backing pages, round robin" },
    buffers: { type: 'integer', default: 3, minimum: 1, maximum: 64, description: 'buffers in the ring' },
    bytes: { type: 'integer', default: 65536, minimum: 4096, maximum: 64 * 1024 * 1024, description: 'bytes per buffer' },
    waitTimeoutMs: { type: 'integer', default: 10_000, minimum: 1, maximum: 600_000, description: 'longest wait for one fence, ms' },
  },
  domains: (p) => [
    // Room for the ring twice over: a move allocates the new pages before it frees the old.
    { name: 'producer', memory: 2 * Number(p.buffers) * Math.ceil(Number(p.bytes) / PAGE_SIZE) * PAGE_SIZE + 16 * 1024 * 1024 },
    { name: 'consumer', memory: '16MiB' },
  ],
  async run(ctx) {
    const frames = Number(ctx.params.frames);
    const moves = Number(ctx.params.moves);
    const ids = await setupStream(ctx, { buffers: Number(ctx.params.buffers), bytes: Number(ctx.params.bytes), movable: true, sync: 'ack' });
    let streamDone = false;
    const stream = runStream(ctx, ids, frames, Number(ctx.params.waitTimeoutMs)).finally(() => { streamDone = true; });
    // The moves, one after the other, round robin over the ring, while the stream runs.
    const moving = (async () => {
      let duringStream = 0;
      const ms: number[] = [];
      let lastProgress = performance.now();
      for (let m = 0; m < moves; m++) {
        const hid = ids.hids[m % ids.hids.length]!;
        const r = await ctx.vm('producer').call<{ moveMs: number; generation: number }>('dmabuf.move', { hid }, streamTimeoutMs(frames));
        ms.push(r.moveMs);
        if (!streamDone) duringStream++;
        if (m + 1 === moves || performance.now() - lastProgress >= 500) {
          lastProgress = performance.now();
          ctx.progress(`producer: moves ${m + 1}/${moves}`);
        }
      }
      return { duringStream, ms };
    })();
    const [r, mv] = await Promise.all([stream, moving]);
    ctx.check(`${moves} moves while frames flowed`, mv.duringStream === moves, `${mv.duringStream} of ${moves} moves completed before the stream ended`);
    ctx.check('the consumer mapped the moved pages again', r.consumer.viewRefreshes > 0, `${r.consumer.viewRefreshes} view refreshes in the consumer, ${r.producer.viewRefreshes} in the producer`);
    const q = await ctx.step({ do: 'call', in: 'producer', cmd: 'dmabuf.query', name: 'producer: the export knows of every move (generation)', args: { hid: ids.hids[0] } });
    const sorted = [...mv.ms].sort((a, b) => a - b);
    ctx.stat('fences', streamStats(r));
    ctx.stat('move', {
      moves, duringStream: mv.duringStream, generationOfFirstBuffer: q.generation,
      moveMs: { median: Math.round((sorted[sorted.length >> 1] ?? 0) * 100) / 100, max: Math.round((sorted[sorted.length - 1] ?? 0) * 100) / 100 },
    });
    ctx.stat('framesVerified', r.consumer.frames - r.consumer.torn);
    await closeStream(ctx, ids);
  },
});
