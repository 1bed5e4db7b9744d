/**
 * Port of drivers/dma-buf/st-dma-resv.c, run once per usage, plus
 * the rules no kernel selftest covers: cumulative queries,
 * replacement, promotion, no degrade, CVE-2022-49935, waits, singleton.
 */
import { describe, expect, it } from 'vitest';
import { MAX_SCHEDULE_TIMEOUT } from '../../src/fence/clock.ts';
import { allocateFenceContexts } from '../../src/fence/fence-context.ts';
import { DmaResv, DmaResvUsage, usageName, usageRw } from '../../src/fence/dma-resv.ts';
import { EINVAL, ERESTARTSYS } from '../../src/fence/errno.ts';
import { DmaFenceArray, toDmaFenceArray } from '../../src/fence/fence-array.ts';
import { DmaFenceChain } from '../../src/fence/fence-chain.ts';
import { mockFence } from './helpers.ts';

const { KERNEL, WRITE, READ, BOOKKEEP } = DmaResvUsage;
const USAGES = [KERNEL, WRITE, READ, BOOKKEEP] as const;

describe.each(USAGES.map((u) => [usageName(u), u] as const))('st-dma-resv (%s)', (_name, usage) => {
  it('sanitycheck', () => {
    const resv = new DmaResv();
    expect(resv.numFences).toBe(0);
    expect(resv.testSignaled(usage)).toBe(true);
  });

  it('test_signaling', () => {
    const resv = new DmaResv();
    const f = mockFence();
    f.enableSwSignaling();
    resv.addFence(f, usage);
    expect(resv.testSignaled(usage)).toBe(false);
    f.signal();
    expect(resv.testSignaled(usage)).toBe(true);
  });

  it('test_for_each', () => {
    const resv = new DmaResv();
    const f = mockFence();
    resv.addFence(f, usage);
    expect([...resv.fences(usage)]).toEqual([{ fence: f, usage }]);
  });

  it('test_for_each_unlocked: restarts are flagged and repeat the walk', () => {
    const resv = new DmaResv();
    const f = mockFence();
    resv.addFence(f, usage);
    const iter = resv.unlockedFences(usage);
    const first = iter.next();
    expect(first.value).toEqual({ fence: f, usage, restarted: true });
    // Force a restart: the object changes while the caller is between entries.
    const done = mockFence();
    done.signal();
    resv.addFence(done, BOOKKEEP);
    const second = iter.next();
    expect(second.value).toEqual({ fence: f, usage, restarted: true });
    expect(iter.next().done).toBe(true);
  });

  it('test_get_fences', () => {
    const resv = new DmaResv();
    const f = mockFence();
    resv.addFence(f, usage);
    expect(resv.getFences(usage)).toEqual([f]);
  });
});

describe('dma_resv usage classes', () => {
  function populated(): { resv: DmaResv; byUsage: Map<DmaResvUsage, ReturnType<typeof mockFence>> } {
    const resv = new DmaResv();
    const byUsage = new Map<DmaResvUsage, ReturnType<typeof mockFence>>();
    for (const u of USAGES) {
      const f = mockFence();
      byUsage.set(u, f);
      resv.addFence(f, u);
    }
    return { resv, byUsage };
  }

  it.each(USAGES)('a query for usage %i also returns every stronger class', (u) => {
    const { resv, byUsage } = populated();
    const expected = USAGES.filter((x) => x <= u).map((x) => byUsage.get(x));
    expect(resv.getFences(u)).toEqual(expected);
    expect([...resv.fences(u)].map((e) => e.fence)).toEqual(expected);
  });

  it('testSignaled ignores weaker classes', () => {
    const resv = new DmaResv();
    resv.addFence(mockFence(), READ);
    expect(resv.testSignaled(WRITE)).toBe(true);
    expect(resv.testSignaled(READ)).toBe(false);
    expect(resv.testSignaled(BOOKKEEP)).toBe(false);
  });

  it('usageRw: writes wait for readers and writers, reads for writers', () => {
    expect(usageRw(true)).toBe(READ);
    expect(usageRw(false)).toBe(WRITE);
  });

  it('rejects invalid usages', () => {
    expect(() => new DmaResv().addFence(mockFence(), 4 as DmaResvUsage)).toThrow(RangeError);
    expect(() => new DmaResv().getFences(-1 as DmaResvUsage)).toThrow(RangeError);
  });
});

describe('dma_resv_add_fence replacement rules', () => {
  it('promotion: BOOKKEEP re-added as READ becomes READ, in place', () => {
    const resv = new DmaResv();
    const f = mockFence();
    resv.addFence(f, BOOKKEEP);
    expect(resv.testSignaled(READ)).toBe(true);
    resv.addFence(f, READ);
    expect(resv.numFences).toBe(1);
    expect([...resv.fences(BOOKKEEP)]).toEqual([{ fence: f, usage: READ }]);
    expect(resv.testSignaled(READ)).toBe(false);
  });

  it('no degrade: WRITE re-added as READ keeps the WRITE entry', () => {
    const resv = new DmaResv();
    const f = mockFence();
    resv.addFence(f, WRITE);
    resv.addFence(f, READ);
    expect([...resv.fences(BOOKKEEP)]).toEqual([
      { fence: f, usage: WRITE },
      { fence: f, usage: READ },
    ]);
    expect(resv.getFences(WRITE)).toEqual([f]);
  });

  it('the same fence with the same usage needs no extra slot (later-or-same fix)', () => {
    const resv = new DmaResv();
    const f = mockFence();
    resv.addFence(f, READ);
    resv.addFence(f, READ);
    expect(resv.numFences).toBe(1);
  });

  it('a later fence of the same context replaces the earlier one', () => {
    const resv = new DmaResv();
    const ctx = allocateFenceContexts(1);
    const f1 = mockFence(ctx, 1);
    const f2 = mockFence(ctx, 2);
    resv.addFence(f1, WRITE);
    resv.addFence(f2, KERNEL);
    expect([...resv.fences(BOOKKEEP)]).toEqual([{ fence: f2, usage: KERNEL }]);
  });

  it('CVE-2022-49935: an earlier same-context fence never replaces a pending later one', () => {
    const resv = new DmaResv();
    const ctx = allocateFenceContexts(1);
    const later = mockFence(ctx, 10);
    const earlier = mockFence(ctx, 9);
    resv.addFence(later, WRITE);
    resv.addFence(earlier, WRITE);
    expect(resv.getFences(WRITE)).toEqual([later, earlier]);
    earlier.signal();
    // The buffer is still busy: the later work has not finished.
    expect(resv.testSignaled(WRITE)).toBe(false);
  });

  it('a distinct fence with the same seqno does not replace either', () => {
    const resv = new DmaResv();
    const ctx = allocateFenceContexts(1);
    const a = mockFence(ctx, 5);
    const b = mockFence(ctx, 5);
    resv.addFence(a, READ);
    resv.addFence(b, READ);
    expect(resv.getFences(READ)).toEqual([a, b]);
  });

  it('a later fence with a weaker usage is appended (no degrade)', () => {
    const resv = new DmaResv();
    const ctx = allocateFenceContexts(1);
    const w = mockFence(ctx, 1);
    const r = mockFence(ctx, 2);
    resv.addFence(w, WRITE);
    resv.addFence(r, READ);
    expect(resv.getFences(WRITE)).toEqual([w]);
    expect(resv.getFences(READ)).toEqual([w, r]);
  });

  it('an unrelated context is appended; a signalled entry is recycled', () => {
    const resv = new DmaResv();
    const a = mockFence();
    const b = mockFence();
    resv.addFence(a, WRITE);
    resv.addFence(b, READ);
    expect(resv.numFences).toBe(2);
    a.signal();
    const c = mockFence();
    resv.addFence(c, BOOKKEEP);
    expect(resv.numFences).toBe(2);
    expect([...resv.fences(BOOKKEEP)].map((e) => e.fence)).toEqual([c, b]);
  });

  it('refuses containers: each fence must be added individually', () => {
    const resv = new DmaResv();
    const array = new DmaFenceArray([mockFence()], allocateFenceContexts(1), 1);
    expect(() => resv.addFence(array, READ)).toThrow(TypeError);
    expect(() => resv.addFence(new DmaFenceChain(null, mockFence(), 1), READ)).toThrow(TypeError);
  });

  it('replaceFences swaps every fence of a context', () => {
    const resv = new DmaResv();
    const ctx = allocateFenceContexts(1);
    const keep = mockFence();
    resv.addFence(mockFence(ctx, 1), BOOKKEEP);
    resv.addFence(keep, READ);
    resv.addFence(mockFence(ctx, 0), BOOKKEEP);
    const replacement = mockFence();
    resv.replaceFences(ctx, replacement, KERNEL);
    expect([...resv.fences(BOOKKEEP)]).toEqual([
      { fence: replacement, usage: KERNEL },
      { fence: keep, usage: READ },
      { fence: replacement, usage: KERNEL },
    ]);
  });

  it('copyFences copies the pending fences with their usages', () => {
    const src = new DmaResv();
    const done = mockFence();
    const w = mockFence();
    src.addFence(done, READ);
    src.addFence(w, WRITE);
    done.signal();
    const dst = new DmaResv();
    dst.addFence(mockFence(), KERNEL);
    dst.copyFences(src);
    expect([...dst.fences(BOOKKEEP)]).toEqual([{ fence: w, usage: WRITE }]);
  });
});

describe('dma_resv queries', () => {
  it('getFences is a snapshot of pending fences', () => {
    const resv = new DmaResv();
    const a = mockFence();
    const b = mockFence();
    resv.addFence(a, WRITE);
    resv.addFence(b, WRITE);
    const snap = resv.getFences(WRITE);
    a.signal();
    resv.addFence(mockFence(), WRITE);
    expect(snap).toEqual([a, b]);
    expect(resv.getFences(WRITE)).not.toContain(a);
  });

  it('getSingleton: null, the fence, or a new array', () => {
    const resv = new DmaResv();
    expect(resv.getSingleton(BOOKKEEP)).toBeNull();
    const a = mockFence();
    resv.addFence(a, WRITE);
    expect(resv.getSingleton(BOOKKEEP)).toBe(a);
    const b = mockFence();
    resv.addFence(b, READ);
    const array = toDmaFenceArray(resv.getSingleton(READ));
    expect(array?.fences).toEqual([a, b]);
    expect(array?.seqno).toBe(1);
    expect(array?.signalOnAny).toBe(false);
    expect(resv.getSingleton(WRITE)).toBe(a);
  });
});

describe('dma_resv_wait_timeout', () => {
  it('returns the timeout (or 1 for 0) when idle, and EINVAL for a negative one', async () => {
    const resv = new DmaResv();
    expect(await resv.waitTimeout(BOOKKEEP, 0)).toBe(1);
    expect(await resv.waitTimeout(BOOKKEEP, 40)).toBe(40);
    expect(await resv.waitTimeout(BOOKKEEP, MAX_SCHEDULE_TIMEOUT)).toBe(MAX_SCHEDULE_TIMEOUT);
    expect(await resv.waitTimeout(BOOKKEEP, -1)).toBe(EINVAL);
  });

  it('timeout 0 with a pending fence times out after one tick', async () => {
    const resv = new DmaResv();
    resv.addFence(mockFence(), WRITE);
    expect(await resv.waitTimeout(WRITE, 0)).toBe(0);
  });

  it('waits for every relevant fence in turn, ignoring weaker classes', async () => {
    const resv = new DmaResv();
    const [kernel, write, bookkeep] = [mockFence(), mockFence(), mockFence()];
    resv.addFence(kernel, KERNEL);
    resv.addFence(write, WRITE);
    resv.addFence(bookkeep, BOOKKEEP);
    let done = false;
    const waiting = resv.waitTimeout(WRITE, 10_000).then((ret) => {
      done = true;
      return ret;
    });
    write.signal();
    await Promise.resolve();
    expect(done).toBe(false);
    kernel.signal();
    const ret = await waiting;
    expect(ret).toBeGreaterThan(0);
    expect(ret).toBeLessThanOrEqual(10_000);
  });

  it('also waits for fences added while it waits', async () => {
    const resv = new DmaResv();
    const first = mockFence();
    const second = mockFence();
    resv.addFence(first, WRITE);
    let done = false;
    const waiting = resv.waitTimeout(WRITE, MAX_SCHEDULE_TIMEOUT).then((r) => {
      done = true;
      return r;
    });
    resv.addFence(second, WRITE);
    first.signal();
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    second.signal();
    expect(await waiting).toBe(MAX_SCHEDULE_TIMEOUT);
  });

  it('is interruptible', async () => {
    const resv = new DmaResv();
    resv.addFence(mockFence(), KERNEL);
    const ac = new AbortController();
    const waiting = resv.waitTimeout(KERNEL, MAX_SCHEDULE_TIMEOUT, ac.signal);
    ac.abort();
    expect(await waiting).toBe(ERESTARTSYS);
  });
});
