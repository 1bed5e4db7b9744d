/**
 * Port of IGT tests/sw_sync.c for what makes sense in one
 * process, plus the sw_sync rules of sw_sync.c (wraparound, point reuse, ordering,
 * deadlines). sync_busy_fork* need a second process and belong to later work.
 */
import { describe, expect, it } from 'vitest';
import { DmaFenceCb } from '../../src/fence/dma-fence.ts';
import { DmaResv } from '../../src/fence/dma-resv.ts';
import { EBADF, EINVAL, ENOENT, ETIME } from '../../src/fence/errno.ts';
import { SwSyncTimeline } from '../../src/fence/sw-sync.ts';
import { SyncFile, syncFileMerge } from '../../src/fence/sync-file.ts';
import { expectErrno, mockFence, prng, randInt, Semaphore } from './helpers.ts';
import { countWithStatus, FENCE_STATUS_ACTIVE, FENCE_STATUS_SIGNALED, fenceStatus, igtWait } from './sync-test-utils.ts';


describe('IGT sw_sync', () => {
  it('alloc_timeline', () => {
    const timeline = new SwSyncTimeline();
    timeline.close();
    expect(timeline.closed).toBe(true);
  });

  it('alloc_fence: a fence at 0 is born signalled', async () => {
    const timeline = new SwSyncTimeline();
    const fence = timeline.createFence(0);
    expect(await igtWait(fence, 0)).toBe(0);
  });

  it('alloc_fence_invalid_timeline', () => {
    const timeline = new SwSyncTimeline();
    timeline.close();
    expectErrno(() => timeline.createFence(0), EBADF);
  });

  it('timeline_closed: pending points signal with -ENOENT', async () => {
    const timeline = new SwSyncTimeline();
    const fence = timeline.createFence(1);
    timeline.close();
    expect(await igtWait(fence, 0)).toBe(0);
    expect(fenceStatus(fence)).toBe(ENOENT);
  });

  it('timeline_closed_signaled: an already signalled point keeps status 1', async () => {
    const timeline = new SwSyncTimeline();
    const fence = timeline.createFence(1);
    timeline.inc(1);
    timeline.close();
    expect(await igtWait(fence, 0)).toBe(0);
    expect(fenceStatus(fence)).toBe(1);
  });

  it('alloc_merge_fence', () => {
    const [t1, t2] = [new SwSyncTimeline(), new SwSyncTimeline()];
    const merged = syncFileMerge('merge', t1.createFence(1), t2.createFence(2));
    expect(merged.getInfo().numFences).toBe(2);
  });

  it('sync_busy', async () => {
    const timeline = new SwSyncTimeline();
    const fence = timeline.createFence(5);
    expect(await igtWait(fence, 0)).toBe(ETIME);
    timeline.inc(1);
    expect(await igtWait(fence, 0)).toBe(ETIME);
    timeline.inc(4);
    expect(await igtWait(fence, 0)).toBe(0);
    timeline.inc(10);
    expect(await igtWait(fence, 0)).toBe(0);

    const primes = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97];
    let seqno = timeline.value;
    for (const p of primes) {
      seqno += p;
      const f = timeline.createFence(seqno);
      expect(await igtWait(f, 0)).toBe(ETIME);
      timeline.inc(p);
      expect(await igtWait(f, 0)).toBe(0);
    }
  });

  it('sync_merge_invalid: fd2 that is not a sync_file', () => {
    const timeline = new SwSyncTimeline();
    const fence = timeline.createFence(1);
    for (const bogus of [-1, new DmaResv(), { path: '/etc/passwd' }, null]) {
      expectErrno(() => syncFileMerge('merge', fence, bogus), ENOENT);
    }
    expectErrno(() => syncFileMerge('merge', fence, fence, 1), EINVAL);
    expectErrno(() => syncFileMerge('merge', fence, fence, 0, 1), EINVAL);
  });

  it('sync_merge', async () => {
    const timeline = new SwSyncTimeline();
    const inFence = [timeline.createFence(1), timeline.createFence(2), timeline.createFence(3)] as const;
    let merged = syncFileMerge('merge', inFence[0], inFence[1]);
    merged = syncFileMerge('merge', inFence[2], merged);
    for (const f of [...inFence, merged]) expect(countWithStatus(f, FENCE_STATUS_ACTIVE)).toBe(1);

    timeline.inc(1);
    expect(countWithStatus(inFence[0], FENCE_STATUS_SIGNALED)).toBe(1);
    expect(countWithStatus(merged, FENCE_STATUS_ACTIVE)).toBe(1);
    timeline.inc(1);
    expect(countWithStatus(inFence[1], FENCE_STATUS_SIGNALED)).toBe(1);
    expect(countWithStatus(merged, FENCE_STATUS_ACTIVE)).toBe(1);
    expect(await igtWait(merged, 0)).toBe(ETIME);
    timeline.inc(1);
    expect(countWithStatus(inFence[2], FENCE_STATUS_SIGNALED)).toBe(1);
    expect(countWithStatus(merged, FENCE_STATUS_SIGNALED)).toBe(1);
    expect(countWithStatus(merged, FENCE_STATUS_ACTIVE)).toBe(0);
    expect(await igtWait(merged, 0)).toBe(0);
  });

  it('sync_merge_same', async () => {
    const timeline = new SwSyncTimeline();
    const fence = timeline.createFence(1);
    const merged = syncFileMerge('merge', fence, fence);
    expect(await igtWait(merged, 0)).toBe(ETIME);
    timeline.inc(1);
    expect(await igtWait(merged, 0)).toBe(0);
  });

  it('sync_multi_timeline_wait', async () => {
    const [a, b, c] = [new SwSyncTimeline(), new SwSyncTimeline(), new SwSyncTimeline()];
    const merged = syncFileMerge('m', syncFileMerge('m', a.createFence(5), b.createFence(5)), c.createFence(5));
    expect(countWithStatus(merged, FENCE_STATUS_ACTIVE)).toBe(3);
    expect(await igtWait(merged, 0)).toBe(ETIME);
    a.inc(5);
    expect(countWithStatus(merged, FENCE_STATUS_SIGNALED)).toBe(1);
    b.inc(5);
    expect(countWithStatus(merged, FENCE_STATUS_SIGNALED)).toBe(2);
    expect(await igtWait(merged, 0)).toBe(ETIME);
    c.inc(5);
    expect(countWithStatus(merged, FENCE_STATUS_ACTIVE)).toBe(0);
    expect(await igtWait(merged, 100)).toBe(0);
  });

  it('sync_multi_consumer: consumers see the main thread’s counter at their point', async () => {
    const threads = 8;
    const iterations = 256;
    const timeline = new SwSyncTimeline();
    const sem = new Semaphore();
    let counter = 0;
    const consumer = async (id: number): Promise<number> => {
      for (let i = 0; i < iterations; i++) {
        const point = i * threads + id;
        const fence = timeline.createFence(point);
        if ((await igtWait(fence, 1000)) !== 0) return 1;
        if (counter !== point) return 1;
        sem.post();
      }
      return 0;
    };
    const running = Array.from({ length: threads }, (_, id) => consumer(id));
    for (let i = 0; i < iterations * threads; i++) {
      await sem.wait();
      counter++;
      timeline.inc(1);
    }
    expect(await Promise.all(running)).toEqual(new Array(threads).fill(0));
    expect(counter).toBe(threads * iterations);
  });

  it('sync_multi_consumer_producer: threads pass the baton through the timeline', async () => {
    const threads = 8;
    const iterations = 256;
    const timeline = new SwSyncTimeline();
    let counter = 0;
    const worker = async (id: number): Promise<number> => {
      for (let i = 0; i < iterations; i++) {
        const point = i * threads + id;
        if ((await igtWait(timeline.createFence(point), 1000)) !== 0) return 1;
        if (counter++ !== point) return 1;
        timeline.inc(1);
      }
      return 0;
    };
    const results = await Promise.all(Array.from({ length: threads }, (_, id) => worker(id)));
    expect(results).toEqual(new Array(threads).fill(0));
    expect(counter).toBe(threads * iterations);
  });

  it('sync_multi_producer_single_consumer: producers stop when the consumer closes its timeline', async () => {
    const producersCount = 4;
    const rounds = 128; // the IGT version runs for 1 s instead
    const producerTimelines = Array.from({ length: producersCount }, () => new SwSyncTimeline('producer'));
    const consumerTimeline = new SwSyncTimeline('consumer');
    let counter = 0;
    const producer = async (id: number): Promise<number> => {
      for (let i = 0; ; i++) {
        let fence: SyncFile;
        try {
          fence = consumerTimeline.createFence(i);
        } catch {
          return i; // the consumer is gone
        }
        if ((await igtWait(fence, 1000)) !== 0) throw new Error('producer wait timed out');
        if (fenceStatus(fence) < 0) return i; // signalled by close, not by the consumer
        counter++;
        producerTimelines[id]?.inc(1);
      }
    };
    const consumer = async (): Promise<void> => {
      for (let it = 1; it <= rounds; it++) {
        let merged = producerTimelines[0]?.createFence(it) as SyncFile;
        for (let j = 1; j < producersCount; j++) merged = syncFileMerge('m', merged, producerTimelines[j]?.createFence(it));
        expect(await igtWait(merged, 1000)).toBe(0);
        expect(counter).toBe(producersCount * it);
        consumerTimeline.inc(1);
      }
      consumerTimeline.close();
    };
    const [, ...done] = await Promise.all([consumer(), ...producerTimelines.map((_, id) => producer(id))]);
    // Each producer completed points 0..rounds and then saw the timeline close.
    expect(done).toEqual(new Array(producersCount).fill(rounds + 1));
    expect(counter).toBe(producersCount * (rounds + 1));
  });

  it('sync_expired_merge: merging signalled fences yields a valid, signalled fence', async () => {
    const timeline = new SwSyncTimeline();
    timeline.inc(100);
    const expired = timeline.createFence(1);
    const bad: number[] = [];
    for (let n = 0; n < 1024; n++) {
      const merged = syncFileMerge('expired', expired, expired);
      if ((await igtWait(merged, -1)) !== 0 || merged.getInfo().status !== 1) bad.push(n);
    }
    expect(bad).toEqual([]);
  });

  it('sync_random_merge', async () => {
    const rand = prng(1024);
    const timelines = Array.from({ length: 32 }, () => new SwSyncTimeline());
    const fenceMap = new Map<number, number>();
    let fence = timelines[0]?.createFence(0) as SyncFile;
    for (let i = 0; i < 1024; i++) {
      const t = randInt(rand, timelines.length);
      const point = randInt(rand, 0x7fffffff);
      fenceMap.set(t, Math.max(fenceMap.get(t) ?? 0, point));
      fence = syncFileMerge('random', timelines[t]?.createFence(point) as SyncFile, fence);
    }
    for (const [t, max] of fenceMap) {
      expect(await igtWait(fence, 0)).toBe(ETIME);
      timelines[t]?.inc(max);
    }
    expect(await igtWait(fence, 1)).toBe(0);
  });
});

describe('sw_sync timeline rules', () => {
  it('points signal in seqno order whatever the creation order', () => {
    const timeline = new SwSyncTimeline();
    const order: number[] = [];
    for (const v of [7, 3, 5, 1, 9]) {
      timeline.createPoint(v).addCallback(new DmaFenceCb((f) => order.push(f.seqno)));
    }
    timeline.inc(8);
    expect(order).toEqual([1, 3, 5, 7]);
    expect(timeline.pendingPoints).toBe(1);
  });

  it('a second request for a pending value reuses the point', () => {
    const timeline = new SwSyncTimeline();
    expect(timeline.createPoint(4)).toBe(timeline.createPoint(4));
    // Born-signalled points are not kept, so each request makes a new one.
    expect(timeline.createPoint(0)).not.toBe(timeline.createPoint(0));
  });

  it('a point more than 2^31 ahead is born signalled (32-bit wrap compare)', () => {
    const timeline = new SwSyncTimeline();
    expect(timeline.createPoint(0x80000001).isSignaled()).toBe(true);
    expect(timeline.createPoint(0x7fffffff).isSignaled()).toBe(false);
  });

  it('the counter wraps at 2^32 and points across the wrap signal in order', () => {
    const timeline = new SwSyncTimeline();
    timeline.inc(0xfffffff0);
    const before = timeline.createPoint(0xfffffffa);
    const after = timeline.createPoint(5);
    const order: number[] = [];
    for (const pt of [after, before]) pt.addCallback(new DmaFenceCb((f) => order.push(f.seqno)));
    timeline.inc(0x10);
    expect(timeline.value).toBe(0);
    expect(order).toEqual([0xfffffffa]);
    timeline.inc(5);
    expect(order).toEqual([0xfffffffa, 5]);
  });

  it('an increment above INT_MAX is applied in steps, so no point is skipped', () => {
    const timeline = new SwSyncTimeline();
    timeline.inc(0x7fffffff);
    const pt = timeline.createPoint(0xbfffffff); // 2^30 ahead: pending
    expect(pt.testSignaledFlag()).toBe(false);
    // In one step the counter would land on 0x6fffffff, which the wrap
    // compare sees as *before* the point; stepping by INT_MAX passes it.
    timeline.inc(0xf0000000);
    expect(timeline.value).toBe(0x6fffffff);
    expect(pt.testSignaledFlag()).toBe(true);
  });

  it('rejects values that are not u32', () => {
    const timeline = new SwSyncTimeline();
    expectErrno(() => timeline.createPoint(-1), EINVAL);
    expectErrno(() => timeline.createPoint(2 ** 32), EINVAL);
    expectErrno(() => timeline.inc(1.5), EINVAL);
  });

  it('names: driver sw_sync, timeline name as obj_name', () => {
    const timeline = new SwSyncTimeline('igt');
    const [info] = timeline.createFence(3).getInfo({ numFences: 1 }).fences;
    expect(info?.driverName).toBe('sw_sync');
    expect(info?.objName).toBe('igt');
  });

  it('deadlines: the earliest is kept; -ENOENT without one', () => {
    const timeline = new SwSyncTimeline();
    const file = timeline.createFence(1);
    expectErrno(() => timeline.getDeadline(file), ENOENT);
    file.setDeadline(500n);
    file.setDeadline(900n);
    file.setDeadline(300n);
    expect(timeline.getDeadline(file)).toBe(300n);
    expectErrno(() => timeline.getDeadline(SyncFile.create(mockFence())), EINVAL);
    expectErrno(() => file.setDeadline(1n, 1), EINVAL);
  });
});
