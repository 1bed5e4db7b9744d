/**
 * The frame stream between in-process peers (the multi-process version is
 * test/multiprocess/fence-frames.test.ts); the frame checks themselves are in
 * test/workloads/frame-pattern.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { FrameStream } from '../../workloads/fence-frame-stream.ts';
import { fenceResources, NOTHING, startPeers } from './pair.ts';

describe('frame stream between in-process peers', () => {
  it('streams 300 frames over three buffers with no torn frame, then releases everything', async () => {
    const { peers: [p, c] } = await startPeers(2);
    const producer = await FrameStream.producer(p!.host, p!.kernel, c!.domid, 3, 16);
    const consumer = await FrameStream.consumer(c!.host, c!.kernel, p!.domid, producer.refs);
    const [rp, rc] = await Promise.all([producer.run({ frames: 300 }), consumer.run({ frames: 300 })]);
    expect(rp).toMatchObject({ frames: 300, torn: 0 });
    expect(rc).toMatchObject({ frames: 300, torn: 0 });
    expect(rc.error).toBeUndefined();
    expect(rc.digest).toBe(rp.digest);
    // A second run continues the frame numbers.
    const [rp2, rc2] = await Promise.all([producer.run({ frames: 30 }), consumer.run({ frames: 30 })]);
    expect(rc2).toMatchObject({ frames: 30, torn: 0, digest: rp2.digest });
    await consumer.close();
    expect(await producer.close()).toBe(true);
    expect(fenceResources(p!)).toEqual(NOTHING);
    expect(fenceResources(c!)).toEqual(NOTHING);
  });
});
