/**
 * Issue 5's two-VM producer and consumer on hyper_dmabuf buffers with
 * explicit fences: the producer VM exports three buffers of its RAM to the
 * consumer VM; for every frame it waits (implicitly, through the buffer's
 * reservation object) for the consumer's read of the frame before last in
 * that buffer, writes the frame with a checksum, and hands it over with a
 * sync_file exported from the buffer; the consumer waits (implicitly,
 * through the same reservation object, across VMs) for the producer's
 * write, checks the frame, and hands the buffer back with its release
 * fence. No torn frame, no read let in early, no hang; then everything is
 * released. `--param frames=10000` runs the issue's full 10,000.
 */
import { PAGE_SIZE } from '../../../protocol/limits.ts';
import { defineScenario } from '../types.ts';
import { closeStream, runStream, setupStream, streamStats } from './fence-stream.ts';

export default defineScenario({
  name: 'fences',
  description: 'producer VM streams frames through 3 hyper_dmabuf buffers to a consumer VM with explicit fences and implicit sync: per-frame checksums, no torn frame, no hang',
  params: {
    frames: { type: 'integer', default: 2000, minimum: 1, maximum: 10_000_000, description: 'frames streamed, each checksummed and checked' },
    buffers: { type: 'integer', default: 3, minimum: 1, maximum: 64, description: 'buffers in the ring' },
    bytes: { type: 'integer', default: 65536, minimum: 4096, maximum: 64 * 1024 * 1024, description: 'bytes per buffer' },
    sync: { type: 'string', default: 'async', enum: ['ack', 'async'], description: "how the consumer's fds mirror fence operations to the exporter" },
    waitTimeoutMs: { type: 'integer', default: 10_000, minimum: 1, maximum: 600_000, description: 'longest wait for one fence, ms' },
  },
  domains: (p) => [
    { name: 'producer', memory: Number(p.buffers) * Math.ceil(Number(p.bytes) / PAGE_SIZE) * PAGE_SIZE + 16 * 1024 * 1024 },
    { name: 'consumer', memory: '16MiB' },
  ],
  async run(ctx) {
    const frames = Number(ctx.params.frames);
    const ids = await setupStream(ctx, { buffers: Number(ctx.params.buffers), bytes: Number(ctx.params.bytes), movable: false, sync: String(ctx.params.sync) });
    const r = await runStream(ctx, ids, frames, Number(ctx.params.waitTimeoutMs));
    ctx.stat('fences', streamStats(r));
    ctx.stat('framesVerified', r.consumer.frames - r.consumer.torn);
    await closeStream(ctx, ids);
  },
});
