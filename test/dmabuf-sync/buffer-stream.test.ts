/**
 * The buffer stream in process: three hyper_dmabuf buffers, frames handed
 * over with explicit fences and every access synchronised implicitly
 * through the buffers' reservation objects. No torn frame, no read before
 * its frame's fence signalled, producer and consumer agree on the digest,
 * and the reservation objects stay small (the rule recycles entries).
 */
import { describe, expect, it } from 'vitest';
import { BufferStream } from '../../workloads/buffer-stream.ts';
import { startSyncWorld } from './world.ts';

describe('buffer stream over hyper_dmabuf buffers', () => {
  it.each(['ack', 'async'] as const)('streams 300 frames with fds in %s mode: no torn frame, no implicit miss, bounded reservation objects', async (sync) => {
    const { doms: [p, c] } = await startSyncWorld(2);
    const producer = await BufferStream.producer(p!, c!.domid, { buffers: 3, bytes: 8 * 4096 });
    const consumer = await BufferStream.consumer(c!, p!.domid, producer.hids, { sync });
    const [rp, rc] = await Promise.all([producer.run({ frames: 300 }), consumer.run({ frames: 300 })]);
    expect(rp.error).toBeUndefined();
    expect(rc.error).toBeUndefined();
    expect(rp).toMatchObject({ frames: 300, torn: 0 });
    expect(rc).toMatchObject({ frames: 300, torn: 0, implicitMisses: 0, digest: rp.digest });
    // Each reservation object holds at most the producer's ready point and the consumer's read fence: recycled.
    expect(rp.maxResvEntries).toBeLessThanOrEqual(2);
    const resv = p!.sync.stats().resv;
    expect(resv).toMatchObject({ buffers: 3, pending: 0, peerAdds: 300 });
    expect(resv.entries).toBeLessThanOrEqual(6);
    expect(await consumer.close()).toBe(true);
    expect(await producer.close()).toBe(true);
    expect(p!.fences.stats().owner.slotHolds).toBe(0);
    expect(c!.fences.stats().owner.slotHolds).toBe(0);
  });

  it('a consumer that stops reading makes the producer\'s implicit wait time out with a report, not a hang', async () => {
    const { doms: [p, c] } = await startSyncWorld(2);
    const producer = await BufferStream.producer(p!, c!.domid, { buffers: 3 });
    const consumer = await BufferStream.consumer(c!, p!.domid, producer.hids);
    const [rp, rc] = await Promise.all([producer.run({ frames: 10, waitTimeoutMs: 300 }), consumer.run({ frames: 4 })]);
    expect(rc).toMatchObject({ frames: 4, torn: 0 });
    expect(rc.error).toBeUndefined();
    // Frames 0..3 consumed, 4..6 fill the ring; frame 7 waits for the release of frame 4, which never comes.
    expect(rp.frames).toBe(7);
    expect(rp.error).toMatchObject({ frame: 7, code: 'ERR_TIMEOUT' });
    expect(await consumer.close()).toBe(true);
    expect(await producer.close()).toBe(true);
  });
});
