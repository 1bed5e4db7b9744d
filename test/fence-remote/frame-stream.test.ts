/**
 * The frame stream between in-process peers (the multi-process version is
 * test/multiprocess/fence-frames.test.ts), and the frame checks themselves.
 */
import { describe, expect, it } from 'vitest';
import { checkFrame, expectedChecksum, writeFrame } from '../../src/fence-remote/workloads/frame-pattern.ts';
import { FrameStream } from '../../src/fence-remote/workloads/frame-stream.ts';
import { fenceResources, NOTHING, startPeers } from './pair.ts';

describe('frame pattern', () => {
  it('tells a whole frame from a torn, a stale and a corrupted one', () => {
    const words = new Uint32Array(1024);
    writeFrame(words, 7);
    expect(checkFrame(words, 7, expectedChecksum(7, 1024))).toMatchObject({ ok: true, frame: 7 });
    expect(checkFrame(words, 8, expectedChecksum(8, 1024))).toMatchObject({ ok: false, problem: 'stale' });
    const next = new Uint32Array(1024);
    writeFrame(next, 8);
    words.set(next.subarray(0, 600)); // the writer got halfway: new header, half the new payload
    expect(checkFrame(words, 8, expectedChecksum(8, 1024))).toMatchObject({ ok: false, problem: 'torn' });
    writeFrame(words, 9);
    words[1] = expectedChecksum(9, 1024) ^ 1;
    words[5]! ^= 1;
    expect(checkFrame(words, 9, expectedChecksum(9, 1024)).ok).toBe(false);
  });
});

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
