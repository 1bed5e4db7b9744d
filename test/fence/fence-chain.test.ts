/**
 * Port of drivers/dma-buf/st-dma-fence-chain.c plus the
 * construction rules of dma-fence-chain.c (context reuse, seqno, garbage collection).
 */
import { describe, expect, it } from 'vitest';
import { MAX_SCHEDULE_TIMEOUT } from '../../src/fence/clock.ts';
import { type DmaFence, isLater } from '../../src/fence/dma-fence.ts';
import { allocateFenceContexts } from '../../src/fence/fence-context.ts';
import { EINVAL } from '../../src/fence/errno.ts';
import { DmaFenceArray } from '../../src/fence/fence-array.ts';
import {
  chainContained,
  chainFindSeqno,
  chainNodes,
  chainWalk,
  DmaFenceChain,
  isFenceChain,
  toDmaFenceChain,
} from '../../src/fence/fence-chain.ts';
import { mockFence, prng, randInt, shuffle, yieldTask } from './helpers.ts';

const CHAIN_SZ = 4096;

interface FenceChains {
  chains: DmaFenceChain[];
  fences: DmaFence[];
  tail: DmaFenceChain;
}

/** fence_chains_init: chains[i] = chain(chains[i-1], fences[i], seqnoFn(i)). */
function fenceChains(count: number, seqnoFn: (i: number) => number = (i) => i + 1): FenceChains {
  const chains: DmaFenceChain[] = [];
  const fences: DmaFence[] = [];
  let prev: DmaFenceChain | null = null;
  for (let i = 0; i < count; i++) {
    const fence = mockFence();
    const chain: DmaFenceChain = new DmaFenceChain(prev, fence, seqnoFn(i));
    fences.push(fence);
    chains.push(chain);
    prev = chain;
  }
  return { chains, fences, tail: prev as DmaFenceChain };
}

function at<T>(items: readonly T[], i: number): T {
  const item = items[i];
  if (item === undefined) throw new Error(`index ${i} out of range`);
  return item;
}

describe('st-dma-fence-chain', () => {
  it('sanitycheck: a chain of one node', () => {
    const f = mockFence();
    const chain = new DmaFenceChain(null, f, 1);
    chain.enableSwSignaling();
    f.signal();
    expect(chain.isSignaled()).toBe(true);
  });

  it('find_seqno', () => {
    const fc = fenceChains(64);
    expect(chainFindSeqno(fc.tail, 0)).toEqual({ ret: 0, fence: fc.tail });
    for (let i = 0; i < 64; i++) {
      let found = chainFindSeqno(fc.tail, i + 1);
      expect(found.ret).toBe(0);
      expect(found.fence).toBe(at(fc.chains, i));

      found = chainFindSeqno(found.fence, i + 1);
      expect(found.ret).toBe(0);
      expect(found.fence).toBe(at(fc.chains, i));

      // A future point cannot be found from here.
      expect(chainFindSeqno(at(fc.chains, i), i + 2).ret).toBe(EINVAL);

      found = chainFindSeqno(at(fc.chains, i), i);
      expect(found.ret).toBe(0);
      if (i > 0) expect(found.fence).toBe(at(fc.chains, i - 1));
    }
  });

  it('find_signaled: the result is the first node or null (collected)', () => {
    const fc = fenceChains(2);
    at(fc.fences, 0).signal();
    const found = chainFindSeqno(fc.tail, 1);
    expect(found.ret).toBe(0);
    expect([null, at(fc.chains, 0)]).toContain(found.fence);
  });

  it('find_out_of_order: point 2 still waits for point 1', () => {
    const fc = fenceChains(3);
    at(fc.fences, 1).signal();
    const found = chainFindSeqno(fc.tail, 2);
    expect(found.ret).toBe(0);
    expect(found.fence).toBe(at(fc.chains, 0));
    // Node 2 was garbage-collected out of the list.
    expect(fc.tail.prev).toBe(at(fc.chains, 0));
  });

  it('find_gap: a missing point resolves to the next node covering it', () => {
    const fc = fenceChains(64, (i) => 2 * i + 2);
    for (let i = 0; i < 64; i++) {
      let found = chainFindSeqno(fc.tail, 2 * i + 1);
      expect(found.ret).toBe(0);
      expect(found.fence).toBe(at(fc.chains, i));
      found = chainFindSeqno(found.fence, 2 * i + 2);
      expect(found.ret).toBe(0);
      expect(found.fence).toBe(at(fc.chains, i));
    }
  });

  it('find_race: concurrent finds and signals never fail (bounded)', async () => {
    const fc = fenceChains(CHAIN_SZ);
    // Length of the signalled prefix of fences[], advanced lazily.
    let prefix = 0;
    const signalledPrefix = (): number => {
      while (prefix < CHAIN_SZ && at(fc.fences, prefix).isSignaled()) prefix++;
      return prefix;
    };
    const failures: string[] = [];
    const worker = async (seed: number): Promise<void> => {
      const rand = prng(seed);
      for (let iter = 0; iter < 800; iter++) {
        const seqno = 1 + randInt(rand, CHAIN_SZ);
        const found = chainFindSeqno(fc.tail, seqno);
        if (found.ret !== 0) failures.push(`find ${seqno} failed`);
        const node = toDmaFenceChain(found.fence);
        if (node === null) {
          // Collected: every point up to `seqno` has signalled.
          if (signalledPrefix() < seqno) failures.push(`find ${seqno}: null but point pending`);
        } else {
          // The walk stopped at the first node whose previous point is before
          // `seqno`; any points between it and `seqno` were collected, so signalled.
          if (node.prevSeqno >= seqno) failures.push(`find ${seqno}: stopped too early`);
          for (let j = node.seqno + 1; j <= seqno; j++) {
            if (!at(fc.fences, j - 1).isSignaled()) failures.push(`find ${seqno}: skipped pending ${j}`);
          }
          if (node.seqno === seqno && chainFindSeqno(node, seqno).ret !== 0) failures.push(`find-self ${seqno}`);
        }
        at(fc.fences, randInt(rand, CHAIN_SZ - 1)).signal();
        if (iter % 64 === 0) await yieldTask();
      }
    };
    await Promise.all([1, 2, 3, 4].map(worker));
    expect(failures).toEqual([]);
  });

  it('signal_forward', () => {
    const fc = fenceChains(64);
    for (let i = 0; i < 64; i++) {
      at(fc.fences, i).signal();
      expect(at(fc.chains, i).isSignaled()).toBe(true);
      if (i + 1 < 64) expect(at(fc.chains, i + 1).isSignaled()).toBe(false);
    }
  });

  it('signal_backward', () => {
    const fc = fenceChains(64);
    for (let i = 63; i >= 0; i--) {
      at(fc.fences, i).signal();
      if (i > 0) expect(at(fc.chains, i).isSignaled()).toBe(false);
    }
    for (const chain of fc.chains) expect(chain.isSignaled()).toBe(true);
  });

  const orders: Array<[string, (n: number) => number[]]> = [
    ['wait_forward', (n) => Array.from({ length: n }, (_, i) => i)],
    ['wait_backward', (n) => Array.from({ length: n }, (_, i) => n - 1 - i)],
    ['wait_random', (n) => shuffle(prng(7), Array.from({ length: n }, (_, i) => i))],
  ];
  for (const [name, order] of orders) {
    it(`${name}: a waiter on the tail of ${CHAIN_SZ} wakes only after the last fence`, async () => {
      const fc = fenceChains(CHAIN_SZ);
      let woke = false;
      const waiting = fc.tail.wait().then((ret) => {
        woke = true;
        return ret;
      });
      const sequence = order(CHAIN_SZ);
      for (const i of sequence.slice(0, -1)) at(fc.fences, i).signal();
      await yieldTask();
      expect(woke).toBe(false);
      at(fc.fences, sequence[sequence.length - 1] ?? 0).signal();
      // dma_fence_wait returns 0 on success; the timeout form returns MAX_SCHEDULE_TIMEOUT.
      expect(await waiting).toBe(MAX_SCHEDULE_TIMEOUT);
      expect(fc.tail.testSignaledFlag()).toBe(true);
    });
  }
});

describe('dma_fence_chain construction', () => {
  it('a later seqno reuses the previous node’s context and records prev_seqno', () => {
    const a = new DmaFenceChain(null, mockFence(), 1);
    const b = new DmaFenceChain(a, mockFence(), 5);
    expect(b.context).toBe(a.context);
    expect(b.prevSeqno).toBe(1);
    expect(b.seqno).toBe(5);
    expect(b.seqno64).toBe(true);
    expect(isLater(b, a)).toBe(true);
  });

  it('a non-later seqno gets a new context and at least prev’s seqno', () => {
    const a = new DmaFenceChain(null, mockFence(), 10);
    const b = new DmaFenceChain(a, mockFence(), 3);
    expect(b.context).not.toBe(a.context);
    expect(b.seqno).toBe(10);
    expect(b.prevSeqno).toBe(0);
  });

  it('after a plain fence the node starts a new context with its own seqno', () => {
    const plain = mockFence(undefined, 100);
    const c = new DmaFenceChain(plain, mockFence(), 3);
    expect(c.context).not.toBe(plain.context);
    expect(c.seqno).toBe(3);
  });

  it('seqnos are 64-bit: no wraparound', () => {
    const a = new DmaFenceChain(null, mockFence(), 0xffffffff);
    const b = new DmaFenceChain(a, mockFence(), 2 ** 33);
    expect(b.context).toBe(a.context);
  });

  it('the contained fence must not be a chain; an array is fine', () => {
    const inner = new DmaFenceChain(null, mockFence(), 1);
    expect(() => new DmaFenceChain(null, inner, 2)).toThrow(TypeError);
    const array = new DmaFenceArray([mockFence(), mockFence()], allocateFenceContexts(1), 1);
    const chain = new DmaFenceChain(null, array, 1);
    expect(chainContained(chain)).toBe(array);
    expect(isFenceChain(chain)).toBe(true);
    expect(chain.driverName).toBe('dma_fence_chain');
  });

  it('walking collects signalled predecessors', () => {
    const fc = fenceChains(4);
    at(fc.fences, 0).signal();
    at(fc.fences, 1).signal();
    expect([...chainNodes(fc.tail)]).toEqual([fc.tail, at(fc.chains, 2)]);
    expect(at(fc.chains, 2).prev).toBeNull();
    expect(chainWalk(mockFence())).toBeNull();
  });

  it('a chain over an array signals once the array does', () => {
    const members = [mockFence(), mockFence()];
    const chain = new DmaFenceChain(null, new DmaFenceArray(members, allocateFenceContexts(1), 1), 1);
    let fired = false;
    const waiting = chain.wait(1000).then(() => (fired = true));
    members[0]?.signal();
    expect(chain.testSignaledFlag()).toBe(false);
    members[1]?.signal();
    expect(chain.testSignaledFlag()).toBe(true);
    return waiting.then(() => expect(fired).toBe(true));
  });
});
