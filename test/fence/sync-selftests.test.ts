/**
 * Port of tools/testing/selftests/sync/: sync_alloc, sync_fence,
 * sync_merge, sync_wait and the three stress tests, with async tasks as the
 * threads and iteration counts bounded to keep the suite fast.
 */
import { describe, expect, it } from 'vitest';
import { EBADF } from '../../src/fence/errno.ts';
import { SwSyncTimeline } from '../../src/fence/sw-sync.ts';
import { type SyncFile, syncFileMerge } from '../../src/fence/sync-file.ts';
import { expectErrno, prng, randInt, yieldTask } from './helpers.ts';
import {
  countWithStatus,
  FENCE_STATUS_ACTIVE,
  FENCE_STATUS_ERROR,
  FENCE_STATUS_SIGNALED,
  fenceSize,
  syncWait,
} from './sync-test-utils.ts';

describe('sync_alloc', () => {
  it('test_alloc_timeline', () => {
    const timeline = new SwSyncTimeline();
    expect(timeline.value).toBe(0);
    expect(timeline.closed).toBe(false);
    timeline.close();
  });

  it('test_alloc_fence', () => {
    const timeline = new SwSyncTimeline();
    const fence = timeline.createFence(1);
    expect(fence.fence.seqno).toBe(1);
    expect(fence.poll()).toBe(0);
  });

  it('test_alloc_fence_negative: no fence from a timeline that is gone', () => {
    const timeline = new SwSyncTimeline();
    timeline.close();
    expectErrno(() => timeline.createFence(1), EBADF);
  });
});

describe('sync_fence', () => {
  it('test_fence_one_timeline_wait', async () => {
    const timeline = new SwSyncTimeline();
    const fence = timeline.createFence(5);
    expect(await syncWait(fence, 0)).toBe(0);
    timeline.inc(1);
    expect(await syncWait(fence, 0)).toBe(0);
    timeline.inc(4);
    expect(await syncWait(fence, 0)).toBeGreaterThan(0);
    timeline.inc(10);
    expect(await syncWait(fence, 0)).toBeGreaterThan(0);
  });

  it('test_fence_one_timeline_merge (without the upstream copy-paste bug)', () => {
    const timeline = new SwSyncTimeline();
    const a = timeline.createFence(1);
    const b = timeline.createFence(2);
    const c = timeline.createFence(3);
    const d = syncFileMerge('mergeFence', c, syncFileMerge('mergeFence', b, a));
    for (const f of [a, b, c, d]) expect(countWithStatus(f, FENCE_STATUS_ACTIVE)).toBe(1);

    timeline.inc(1);
    expect(countWithStatus(a, FENCE_STATUS_SIGNALED)).toBe(1);
    expect(countWithStatus(d, FENCE_STATUS_ACTIVE)).toBe(1);
    timeline.inc(1);
    expect(countWithStatus(b, FENCE_STATUS_SIGNALED)).toBe(1);
    expect(countWithStatus(d, FENCE_STATUS_ACTIVE)).toBe(1);
    timeline.inc(1);
    expect(countWithStatus(c, FENCE_STATUS_SIGNALED)).toBe(1);
    expect(countWithStatus(d, FENCE_STATUS_ACTIVE)).toBe(0);
    expect(countWithStatus(d, FENCE_STATUS_SIGNALED)).toBe(1);
  });
});

describe('sync_merge', () => {
  it('test_fence_merge_same_fence', () => {
    const timeline = new SwSyncTimeline();
    const fence = timeline.createFence(5);
    const merged = syncFileMerge('mergeFence', fence, fence);
    expect(countWithStatus(merged, FENCE_STATUS_SIGNALED)).toBe(0);
    timeline.inc(5);
    expect(countWithStatus(merged, FENCE_STATUS_SIGNALED)).toBe(1);
    expect(fenceSize(merged)).toBe(1);
  });
});

describe('sync_wait', () => {
  it('test_fence_multi_timeline_wait', async () => {
    const [ta, tb, tc] = [new SwSyncTimeline(), new SwSyncTimeline(), new SwSyncTimeline()];
    const merged = syncFileMerge('mergeFence', ta.createFence(5), syncFileMerge('mergeFence', tb.createFence(5), tc.createFence(5)));
    expect(countWithStatus(merged, FENCE_STATUS_ACTIVE)).toBe(3);
    expect(await syncWait(merged, 0)).toBe(0);

    ta.inc(5);
    expect(countWithStatus(merged, FENCE_STATUS_ACTIVE)).toBe(2);
    expect(countWithStatus(merged, FENCE_STATUS_SIGNALED)).toBe(1);
    tb.inc(5);
    expect(countWithStatus(merged, FENCE_STATUS_ACTIVE)).toBe(1);
    expect(countWithStatus(merged, FENCE_STATUS_SIGNALED)).toBe(2);
    tc.inc(5);
    expect(countWithStatus(merged, FENCE_STATUS_ACTIVE)).toBe(0);
    expect(countWithStatus(merged, FENCE_STATUS_SIGNALED)).toBe(3);
    expect(await syncWait(merged, 100)).toBeGreaterThan(0);
  });
});

describe('sync stress', () => {
  it('test_stress_two_threads_shared_timeline: strict alternation through fences', async () => {
    const timeline = new SwSyncTimeline();
    const iterations = 2048;
    let counter = 0;
    const failures: string[] = [];
    const thread = async (id: number): Promise<void> => {
      for (let i = 0; i < iterations; i++) {
        const fence = timeline.createFence(i * 2 + id);
        if (!((await syncWait(fence, -1)) > 0)) failures.push(`thread ${id}: wait failed at ${i}`);
        // The other thread's write is visible, and nobody else ran in between.
        if (counter !== i * 2 + id) failures.push(`thread ${id}: counter ${counter} at ${i}`);
        counter++;
        timeline.inc(1);
      }
    };
    await Promise.all([thread(0), thread(1)]);
    expect(failures).toEqual([]);
    expect(counter).toBe(2 * iterations);
  });

  it('test_consumer_stress_multi_producer_single_consumer', async () => {
    const n = 5;
    const iterations = 128;
    const producers = Array.from({ length: n }, () => new SwSyncTimeline('producer'));
    const consumer = new SwSyncTimeline('consumer');
    let counter = 0;
    const failures: string[] = [];

    // The alternative to poll: spin on FILE_INFO, where an error is a failure.
    const busyWait = async (file: SyncFile): Promise<void> => {
      while (countWithStatus(file, FENCE_STATUS_SIGNALED) !== fenceSize(file)) {
        if (countWithStatus(file, FENCE_STATUS_ERROR) !== 0) failures.push('error status while busy-waiting');
        await yieldTask();
      }
    };
    const wait = async (file: SyncFile, busy: boolean): Promise<void> => {
      if (busy) await busyWait(file);
      else if (!((await syncWait(file, -1)) > 0)) failures.push('wait failed');
    };

    const producer = async (id: number): Promise<void> => {
      for (let i = 0; i < iterations; i++) {
        // Vary the means of waiting, as the selftest does.
        await wait(consumer.createFence(i), (i + id) % 8 === 0);
        counter++;
        producers[id]?.inc(1);
      }
    };

    const consume = async (): Promise<void> => {
      for (let it = 1; it <= iterations; it++) {
        let fence = producers[0]?.createFence(it) as SyncFile;
        for (let j = 1; j < n; j++) fence = syncFileMerge('name', fence, producers[j]?.createFence(it));
        await wait(fence, it % 8 === 0);
        if (counter !== n * it) failures.push(`counter ${counter} at iteration ${it}`);
        consumer.inc(1);
      }
    };

    await Promise.all([...producers.map((_, id) => producer(id)), consume()]);
    expect(failures).toEqual([]);
    expect(counter).toBe(n * iterations);
  });

  it('test_merge_stress_random_merge: one leaf per timeline, the latest point', async () => {
    const timelineCount = 32;
    const mergeCount = 2048;
    const rand = prng(0x5eed);
    const timelines = Array.from({ length: timelineCount }, () => new SwSyncTimeline());
    const fenceMap = new Map<number, number>();
    let fence = timelines[0]?.createFence(0) as SyncFile;
    const mismatches: number[] = [];
    for (let i = 0; i < mergeCount; i++) {
      const t = randInt(rand, timelineCount);
      const point = 1 + randInt(rand, 0x7ffffffe); // rand(): below 2^31, within the wrap window
      fenceMap.set(t, Math.max(fenceMap.get(t) ?? 0, point));
      fence = syncFileMerge('merge', timelines[t]?.createFence(point) as SyncFile, fence);
      if (fenceSize(fence) !== fenceMap.size) mismatches.push(i);
    }
    expect(mismatches).toEqual([]);
    // Every leaf is the latest point of its timeline.
    const leaves = fence.getInfo({ numFences: fenceMap.size });
    expect(leaves.numFences).toBe(fenceMap.size);
    for (const [t, max] of fenceMap) {
      expect(await syncWait(fence, 0)).toBe(0);
      timelines[t]?.inc(max);
    }
    expect(await syncWait(fence, 0)).toBeGreaterThan(0);
  });
});

describe('closed timeline', () => {
  it('inc on a closed timeline fails with EBADF', () => {
    const timeline = new SwSyncTimeline();
    timeline.close();
    expectErrno(() => timeline.inc(1), EBADF);
  });
});
