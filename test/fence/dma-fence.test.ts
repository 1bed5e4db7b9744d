/**
 * Port of drivers/dma-buf/st-dma-fence.c plus the dma_fence rules
 * of dma-fence.h that the selftest does not cover (wraparound, enable_signaling,
 * wait_any, release).
 */
import { describe, expect, it } from 'vitest';
import { MAX_SCHEDULE_TIMEOUT } from '../../src/fence/clock.ts';
import { DmaFence, DmaFenceCb, type DmaFenceOps, isLater, isLaterOrSame, laterFence } from '../../src/fence/dma-fence.ts';
import { allocateFenceContexts, isSeqnoLater } from '../../src/fence/fence-context.ts';
import { waitAny } from '../../src/fence/wait-any.ts';
import { EDEADLK, EINVAL, EIO, ENOENT, ERESTARTSYS, ETIMEDOUT, MAX_ERRNO } from '../../src/fence/errno.ts';
import { allocatePrivateStub, getStub, STUB_CONTEXT } from '../../src/fence/stub.ts';
import { mockFence, mockOps, yieldTask } from './helpers.ts';

function flagCb(): { cb: DmaFenceCb; seen: () => boolean } {
  let seen = false;
  return {
    cb: new DmaFenceCb(() => {
      seen = true;
    }),
    seen: () => seen,
  };
}

describe('st-dma-fence', () => {
  it('sanitycheck: create, enable_sw_signaling, signal, put', () => {
    const f = mockFence();
    f.enableSwSignaling();
    expect(f.signal()).toBe(0);
    f.release();
    expect(f.getStatus()).toBe(1);
  });

  it('test_signaling: signals once; a second signal reports -EINVAL', () => {
    const f = mockFence();
    f.enableSwSignaling();
    expect(f.isSignaled()).toBe(false);
    expect(f.testSignaledFlag()).toBe(false);
    expect(f.signal()).toBe(0);
    expect(f.isSignaled()).toBe(true);
    expect(f.testSignaledFlag()).toBe(true);
    expect(f.signal()).toBe(EINVAL);
    expect(f.checkAndSignal()).toBe(true);
    expect(mockFence().checkAndSignal()).toBe(false);
  });

  it('test_add_callback: the callback has run when signal() returns', () => {
    const f = mockFence();
    const { cb, seen } = flagCb();
    expect(f.addCallback(cb)).toBe(0);
    expect(seen()).toBe(false);
    f.signal();
    expect(seen()).toBe(true);
  });

  it('test_late_add_callback: -ENOENT after signal, and the callback never runs', () => {
    const f = mockFence();
    f.enableSwSignaling();
    f.signal();
    const { cb, seen } = flagCb();
    expect(f.addCallback(cb)).toBe(ENOENT);
    f.signal();
    expect(seen()).toBe(false);
    expect(f.removeCallback(cb)).toBe(false);
  });

  it('test_rm_callback: a removed callback does not run', () => {
    const f = mockFence();
    const { cb, seen } = flagCb();
    expect(f.addCallback(cb)).toBe(0);
    expect(f.removeCallback(cb)).toBe(true);
    f.signal();
    expect(seen()).toBe(false);
  });

  it('test_late_rm_callback: remove after the callback ran returns false', () => {
    const f = mockFence();
    const { cb, seen } = flagCb();
    expect(f.addCallback(cb)).toBe(0);
    f.signal();
    expect(seen()).toBe(true);
    expect(f.removeCallback(cb)).toBe(false);
  });

  it('test_status: 0 before, 1 after signal', () => {
    const f = mockFence();
    f.enableSwSignaling();
    expect(f.getStatus()).toBe(0);
    f.signal();
    expect(f.getStatus()).toBe(1);
  });

  it('test_error: an error set before signal is invisible until the fence signals', () => {
    const f = mockFence();
    f.enableSwSignaling();
    expect(f.setError(EIO)).toBe(0);
    expect(f.getStatus()).toBe(0);
    f.signal();
    expect(f.getStatus()).toBe(EIO);
  });

  it('test_wait: wait(0) is 0 while pending and 1 once signalled (default wait)', async () => {
    const f = mockFence();
    f.enableSwSignaling();
    expect(await f.wait(0)).toBe(0);
    f.signal();
    expect(await f.wait(0)).toBe(1);
  });

  it('test_wait_timeout: a short wait times out; a longer one sees the signal', async () => {
    const f = mockFence();
    f.enableSwSignaling();
    expect(await f.wait(1)).toBe(0);
    const waiting = f.wait(1000); // queued its callback before returning
    expect(f.pendingCallbacks).toBe(1);
    f.signal();
    const ret = await waiting;
    expect(ret).toBeGreaterThan(0);
    expect(ret).toBeLessThanOrEqual(1000);
  });

  it('test_stub: 64 stubs are all signalled', () => {
    const stubs = Array.from({ length: 64 }, () => getStub());
    for (const s of stubs) expect(s.isSignaled()).toBe(true);
    expect(new Set(stubs).size).toBe(1);
    expect(getStub().context).toBe(STUB_CONTEXT);
    expect(getStub().seqno).toBe(0);
    expect(getStub().timestamp).toBeTypeOf('bigint');
  });

  it('private stub carries the given timestamp', () => {
    const s = allocatePrivateStub(1234n);
    expect(s.isSignaled()).toBe(true);
    expect(s.timestamp).toBe(1234n);
    expect(s).not.toBe(getStub());
  });

  for (const before of [true, false]) {
    it(`test_race_signal_callback (signal ${before ? 'before' : 'after'} add_callback): no callback is lost`, async () => {
      const published: Array<DmaFence | null> = [null, null];
      const ctx = allocateFenceContexts(2);
      const passes = 300;
      const thread = async (id: 0 | 1): Promise<{ miss: number; lost: number }> => {
        let miss = 0;
        let lost = 0;
        for (let pass = 0; pass < passes; pass++) {
          const f1 = new DmaFence(mockOps, ctx + id, pass + 1);
          f1.enableSwSignaling();
          published[id] = f1;
          let f2 = published[1 - id] ?? null;
          while (f2 === null) {
            await yieldTask();
            f2 = published[1 - id] ?? null;
          }
          if (before) f1.signal();
          let seen = false;
          const cb = new DmaFenceCb(() => {
            seen = true;
          });
          if (f2.addCallback(cb) !== 0) {
            miss++;
            seen = true;
          }
          await yieldTask(); // let the other task run between add and signal
          if (!before) f1.signal();
          if (!seen) await f2.wait();
          if (!seen) lost++;
          published[id] = null;
          await yieldTask();
        }
        return { miss, lost };
      };
      const results = await Promise.all([thread(0), thread(1)]);
      for (const r of results) expect(r.lost).toBe(0);
      // Both paths were exercised: some callbacks attached, some missed.
      const misses = results.reduce((n, r) => n + r.miss, 0);
      expect(misses).toBeLessThan(2 * passes);
    });
  }
});

describe('dma_fence contexts and ordering', () => {
  it('allocateFenceContexts hands out consecutive ids', () => {
    const first = allocateFenceContexts(3);
    expect(first).toBeGreaterThan(STUB_CONTEXT);
    expect(allocateFenceContexts(1)).toBe(first + 3);
    expect(() => allocateFenceContexts(0)).toThrow(RangeError);
  });

  it('32-bit seqnos wrap: 0 is later than 0xffffffff', () => {
    const ctx = allocateFenceContexts(1);
    const high = mockFence(ctx, 0xffffffff);
    const zero = mockFence(ctx, 0);
    expect(isLater(zero, high)).toBe(true);
    expect(isLater(high, zero)).toBe(false);
    expect(isSeqnoLater(0, 0xffffffff, false)).toBe(true);
  });

  it('a point more than 2^31 ahead compares as earlier', () => {
    expect(isSeqnoLater(0x80000001, 0, false)).toBe(false);
    expect(isSeqnoLater(0x7fffffff, 0, false)).toBe(true);
    expect(isSeqnoLater(0x80000001, 0, true)).toBe(true);
  });

  it('64-bit fences compare without wraparound', () => {
    const ctx = allocateFenceContexts(1);
    const a = new DmaFence(mockOps, ctx, 0, { seqno64: true });
    const b = new DmaFence(mockOps, ctx, 0xffffffff, { seqno64: true });
    const c = new DmaFence(mockOps, ctx, 2 ** 40, { seqno64: true });
    expect(isLater(a, b)).toBe(false);
    expect(isLater(b, a)).toBe(true);
    expect(isLater(c, b)).toBe(true);
  });

  it('fences of different contexts are never later', () => {
    expect(isLater(mockFence(undefined, 5), mockFence(undefined, 1))).toBe(false);
  });

  it('isLaterOrSame: the same fence, or a later one; not an equal distinct one', () => {
    const ctx = allocateFenceContexts(1);
    const a = mockFence(ctx, 3);
    const twin = mockFence(ctx, 3);
    expect(isLaterOrSame(a, a)).toBe(true);
    expect(isLaterOrSame(a, twin)).toBe(false);
    expect(isLaterOrSame(mockFence(ctx, 4), a)).toBe(true);
  });

  it('laterFence returns the later fence, or null once it has signalled or contexts differ', () => {
    const ctx = allocateFenceContexts(1);
    const a = mockFence(ctx, 1);
    const b = mockFence(ctx, 2);
    expect(laterFence(a, b)).toBe(b);
    expect(laterFence(b, a)).toBe(b);
    b.signal();
    expect(laterFence(a, b)).toBeNull();
    expect(laterFence(a, mockFence())).toBeNull();
  });

  it('rejects invalid context or seqno', () => {
    expect(() => mockFence(-1, 0)).toThrow(RangeError);
    expect(() => mockFence(1, 1.5)).toThrow(RangeError);
  });
});

describe('dma_fence signalling details', () => {
  it('callbacks run in the order added, each once, with the fence', () => {
    const f = mockFence();
    const order: number[] = [];
    const cbs = [0, 1, 2, 3].map((i) => new DmaFenceCb((fence) => {
      expect(fence).toBe(f);
      order.push(i);
    }));
    for (const cb of cbs) expect(f.addCallback(cb)).toBe(0);
    f.removeCallback(cbs[2] as DmaFenceCb);
    f.signal();
    f.signal();
    expect(order).toEqual([0, 1, 3]);
  });

  it('a callback cannot sit on two fences at once, but can be re-added after it ran', () => {
    const a = mockFence();
    const b = mockFence();
    const { cb } = flagCb();
    expect(a.addCallback(cb)).toBe(0);
    expect(cb.queued).toBe(true);
    expect(b.addCallback(cb)).toBe(EINVAL);
    a.signal();
    expect(cb.queued).toBe(false);
    expect(b.addCallback(cb)).toBe(0);
  });

  it('from inside its callback the fence is already signalled', () => {
    const f = mockFence();
    const seen: number[] = [];
    f.addCallback(new DmaFenceCb((fence) => {
      seen.push(fence.getStatus(), fence.addCallback(new DmaFenceCb(() => {})), fence.signal());
    }));
    f.signal();
    expect(seen).toEqual([1, ENOENT, EINVAL]);
  });

  it('records a timestamp on signal; signalTimestamp uses the one given', () => {
    const f = mockFence();
    expect(f.timestamp).toBeUndefined();
    f.signal();
    expect(f.timestamp).toBeTypeOf('bigint');
    const g = mockFence();
    g.signalTimestamp(42n);
    expect(g.timestamp).toBe(42n);
  });

  it('setError: only before signalling, only -MAX_ERRNO..-1', () => {
    const f = mockFence();
    expect(f.setError(0)).toBe(EINVAL);
    expect(f.setError(5)).toBe(EINVAL);
    expect(f.setError(-MAX_ERRNO - 1)).toBe(EINVAL);
    expect(f.setError(ETIMEDOUT)).toBe(0);
    f.signal();
    expect(f.setError(EIO)).toBe(EINVAL);
    expect(f.getStatus()).toBe(ETIMEDOUT);
    expect(f.error).toBe(ETIMEDOUT);
  });

  it('isSignaled polls ops.signaled and signals the fence', () => {
    let passed = false;
    const ops: DmaFenceOps = { ...mockOps, signaled: () => passed };
    const f = new DmaFence(ops, allocateFenceContexts(1), 1);
    const { cb, seen } = flagCb();
    f.addCallback(cb);
    expect(f.isSignaled()).toBe(false);
    passed = true;
    expect(f.testSignaledFlag()).toBe(false);
    expect(f.isSignaled()).toBe(true);
    expect(seen()).toBe(true);
  });

  it('isSignaled does not enable signalling', () => {
    const f = mockFence();
    f.isSignaled();
    expect(f.signalingEnabled).toBe(false);
  });
});

describe('enable_signaling', () => {
  function counting(ret: boolean, error = 0): { fence: DmaFence; calls: () => number } {
    let calls = 0;
    const ops: DmaFenceOps = {
      ...mockOps,
      enableSignaling: (f) => {
        calls++;
        if (error !== 0) f.setError(error);
        return ret;
      },
    };
    return { fence: new DmaFence(ops, allocateFenceContexts(1), 1), calls: () => calls };
  }

  it('runs at most once whatever triggers it', async () => {
    const { fence, calls } = counting(true);
    expect(calls()).toBe(0);
    fence.addCallback(new DmaFenceCb(() => {}));
    fence.enableSwSignaling();
    expect(await fence.wait(0)).toBe(0);
    expect(calls()).toBe(1);
  });

  it.each([
    ['addCallback', (f: DmaFence) => void f.addCallback(new DmaFenceCb(() => {}))],
    ['wait', (f: DmaFence) => void f.wait(0)],
    ['enableSwSignaling', (f: DmaFence) => f.enableSwSignaling()],
  ])('is triggered by %s', (_name, trigger) => {
    const { fence, calls } = counting(true);
    trigger(fence);
    expect(calls()).toBe(1);
    expect(fence.signalingEnabled).toBe(true);
  });

  it('returning false signals the fence at once (with the error it set)', async () => {
    const { fence } = counting(false, EIO);
    const { cb, seen } = flagCb();
    expect(fence.addCallback(cb)).toBe(ENOENT);
    expect(seen()).toBe(false);
    expect(fence.getStatus()).toBe(EIO);
    const other = counting(false).fence;
    expect(await other.wait(0)).toBe(1);
    expect(await counting(false).fence.wait(25)).toBe(25);
  });

  it('is not called for a fence that has already signalled', () => {
    const { fence, calls } = counting(true);
    fence.signal();
    fence.enableSwSignaling();
    expect(calls()).toBe(0);
  });
});

describe('dma_fence_wait_timeout', () => {
  it('a negative timeout is -EINVAL', async () => {
    expect(await mockFence().wait(-1)).toBe(EINVAL);
  });

  it('already signalled: returns the timeout itself', async () => {
    const f = mockFence();
    f.signal();
    expect(await f.wait(50)).toBe(50);
    expect(await f.wait()).toBe(MAX_SCHEDULE_TIMEOUT);
  });

  it('waits for a later signal and returns the remaining time', async () => {
    const f = mockFence();
    const waiting = f.wait(10_000);
    expect(f.pendingCallbacks).toBe(1);
    queueMicrotask(() => f.signal());
    const ret = await waiting;
    expect(ret).toBeGreaterThan(0);
    expect(ret).toBeLessThanOrEqual(10_000);
    expect(f.pendingCallbacks).toBe(0);
  });

  it('waiting forever resolves MAX_SCHEDULE_TIMEOUT on signal', async () => {
    const f = mockFence();
    const waiting = f.wait();
    f.signal();
    expect(await waiting).toBe(MAX_SCHEDULE_TIMEOUT);
  });

  it('a timed-out wait leaves no callback behind', async () => {
    const f = mockFence();
    expect(await f.wait(2)).toBe(0);
    expect(f.pendingCallbacks).toBe(0);
  });

  it('an interruptible wait returns -ERESTARTSYS when aborted', async () => {
    const f = mockFence();
    const ac = new AbortController();
    const waiting = f.wait(MAX_SCHEDULE_TIMEOUT, ac.signal);
    ac.abort();
    expect(await waiting).toBe(ERESTARTSYS);
    expect(f.pendingCallbacks).toBe(0);
    expect(await f.wait(10, ac.signal)).toBe(ERESTARTSYS);
    f.signal();
    expect(await f.wait(10, ac.signal)).toBe(10);
  });
});

describe('dma_fence_wait_any_timeout', () => {
  it('rejects an empty list or a negative timeout', async () => {
    expect((await waitAny([], 10)).ret).toBe(EINVAL);
    expect((await waitAny([mockFence()], -1)).ret).toBe(EINVAL);
  });

  it('timeout 0: 1 and the index if one is signalled, else 0', async () => {
    const fences = [mockFence(), mockFence(), mockFence()];
    expect(await waitAny(fences, 0)).toEqual({ ret: 0, index: -1 });
    fences[2]?.signal();
    expect(await waitAny(fences, 0)).toEqual({ ret: 1, index: 2 });
  });

  it('an already signalled fence returns at once with the full timeout', async () => {
    const fences = [mockFence(), mockFence()];
    fences[1]?.signal();
    expect(await waitAny(fences, 500)).toEqual({ ret: 500, index: 1 });
    expect(fences[0]?.pendingCallbacks).toBe(0);
  });

  it('reports the index of the fence that fired and cleans up', async () => {
    const fences = [mockFence(), mockFence(), mockFence()];
    const waiting = waitAny(fences, 10_000);
    fences[1]?.signal();
    const { ret, index } = await waiting;
    expect(index).toBe(1);
    expect(ret).toBeGreaterThan(0);
    for (const f of fences) expect(f.pendingCallbacks).toBe(0);
  });

  it('times out with 0', async () => {
    const fences = [mockFence(), mockFence()];
    expect(await waitAny(fences, 2)).toEqual({ ret: 0, index: -1 });
    for (const f of fences) expect(f.pendingCallbacks).toBe(0);
  });

  it('is interruptible', async () => {
    const ac = new AbortController();
    const waiting = waitAny([mockFence()], MAX_SCHEDULE_TIMEOUT, ac.signal);
    ac.abort();
    expect((await waiting).ret).toBe(ERESTARTSYS);
  });
});

describe('dma_fence_release', () => {
  it('a fence released with waiters but never signalled completes with -EDEADLK', async () => {
    const f = mockFence();
    const waiting = f.wait();
    f.release();
    expect(await waiting).toBe(MAX_SCHEDULE_TIMEOUT);
    expect(f.getStatus()).toBe(EDEADLK);
  });

  it('a fence released without waiters is left alone', () => {
    const f = mockFence();
    f.release();
    expect(f.getStatus()).toBe(0);
  });
});

describe('deadline hints', () => {
  it('are passed to the driver only while the fence is pending', () => {
    const seen: bigint[] = [];
    const ops: DmaFenceOps = { ...mockOps, setDeadline: (_f, ns) => void seen.push(ns) };
    const f = new DmaFence(ops, allocateFenceContexts(1), 1);
    f.setDeadline(100n);
    f.signal();
    f.setDeadline(200n);
    expect(seen).toEqual([100n]);
  });
});
