/** Port of drivers/dma-buf/st-dma-fence-unwrap.c and the merge rules of dma_fence_unwrap_merge. */
import { describe, expect, it } from 'vitest';
import type { DmaFence } from '../../src/fence/dma-fence.ts';
import { allocateFenceContexts } from '../../src/fence/fence-context.ts';
import { DmaFenceArray, toDmaFenceArray } from '../../src/fence/fence-array.ts';
import { DmaFenceChain } from '../../src/fence/fence-chain.ts';
import { getStub, isStubFence } from '../../src/fence/stub.ts';
import { dedupFences, mergeFences, unwrapFences } from '../../src/fence/unwrap.ts';
import { mockFence } from './helpers.ts';

/** mock_array: fresh context, seqno 1, signal on all. */
function mockArray(...fences: DmaFence[]): DmaFenceArray {
  return new DmaFenceArray(fences, allocateFenceContexts(1), 1, false);
}

/** mock_chain: seqno 1. */
function mockChain(prev: DmaFence | null, fence: DmaFence): DmaFenceChain {
  return new DmaFenceChain(prev, fence, 1);
}

const leaves = (f: DmaFence): DmaFence[] => [...unwrapFences(f)];

describe('st-dma-fence-unwrap', () => {
  it('sanitycheck: a fence in an array in a chain', () => {
    const f = mockFence();
    const chain = mockChain(null, mockArray(f));
    expect(leaves(chain)).toEqual([f]);
    f.signal();
    expect(chain.isSignaled()).toBe(true);
  });

  it('unwrap_array', () => {
    const [f1, f2] = [mockFence(), mockFence()];
    expect(leaves(mockArray(f1, f2))).toEqual([f1, f2]);
  });

  it('unwrap_chain: the contained fence first, then prev', () => {
    const [f1, f2] = [mockFence(), mockFence()];
    expect(leaves(mockChain(f1, f2))).toEqual([f2, f1]);
  });

  it('unwrap_chain_array', () => {
    const [f1, f2] = [mockFence(), mockFence()];
    expect(leaves(mockChain(null, mockArray(f1, f2)))).toEqual([f1, f2]);
  });

  it('unwrap_merge', () => {
    const [f1, f2] = [mockFence(), mockFence()];
    const merged = mergeFences(f1, f2);
    expect(new Set(leaves(merged))).toEqual(new Set([f1, f2]));
    expect(leaves(merged)).toHaveLength(2);
  });

  it('unwrap_merge_duplicate: merge(f1, f1) is f1', () => {
    const f1 = mockFence();
    expect(leaves(mergeFences(f1, f1))).toEqual([f1]);
    expect(mergeFences(f1, f1)).toBe(f1);
  });

  it('unwrap_merge_seqno: the earlier same-context fence is dropped; ordered by context', () => {
    const ctx0 = allocateFenceContexts(1);
    const ctx1 = allocateFenceContexts(1);
    const f1 = mockFence(ctx1, 1);
    const f2 = mockFence(ctx1, 2);
    const f3 = mockFence(ctx0, 1);
    expect(leaves(mergeFences(f1, f2, f3))).toEqual([f3, f2]);
  });

  it('unwrap_merge_order: the same fences in opposite order come out once, by context', () => {
    const [f1, f2] = [mockFence(), mockFence()];
    const a1 = mockArray(f1, f2);
    const c2 = mockChain(mockChain(null, f1), f2);
    expect(leaves(mergeFences(a1, c2))).toEqual([f1, f2]);
  });

  it('unwrap_merge_complex: the signalled stub is filtered and duplicates removed', () => {
    const [f1, f2] = [mockFence(), mockFence()];
    const f3 = mergeFences(f1, f2);
    const f4 = mockArray(f2, f1);
    const merged = mergeFences(f3, f4, getStub());
    expect(new Set(leaves(merged))).toEqual(new Set([f1, f2]));
    expect(leaves(merged)).toHaveLength(2);
  });

  it('unwrap_merge_complex_seqno: latest per context, ordered by context', () => {
    const ctx0 = allocateFenceContexts(1);
    const ctx1 = allocateFenceContexts(1);
    const f1 = mockFence(ctx0, 2);
    const f2 = mockFence(ctx1, 1);
    const f3 = mockFence(ctx0, 1);
    const f4 = mockFence(ctx1, 2);
    expect(leaves(mergeFences(mockArray(f1, f2), mockArray(f3, f4)))).toEqual([f1, f4]);
  });
});

describe('dma_fence_unwrap_merge result shape', () => {
  it('everything signalled: a private signalled stub with the latest timestamp', () => {
    const [a, b] = [mockFence(), mockFence()];
    a.signalTimestamp(100n);
    b.signalTimestamp(300n);
    const merged = mergeFences(a, mockArray(b));
    expect(isStubFence(merged)).toBe(true);
    expect(merged).not.toBe(getStub());
    expect(merged.isSignaled()).toBe(true);
    expect(merged.timestamp).toBe(300n);
  });

  it('one pending leaf: returned directly, signalled ones dropped', () => {
    const [a, b] = [mockFence(), mockFence()];
    a.signal();
    expect(mergeFences(mockArray(a, b), getStub())).toBe(b);
  });

  it('several pending: a new all-signal array on a fresh context, seqno 1, never nested', () => {
    const [a, b, c] = [mockFence(), mockFence(), mockFence()];
    const first = mergeFences(a, b);
    const merged = toDmaFenceArray(mergeFences(first, c));
    expect(merged).not.toBeNull();
    expect(merged?.seqno).toBe(1);
    expect(merged?.signalOnAny).toBe(false);
    expect(merged?.context).not.toBe(first.context);
    expect(merged?.fences).toEqual([a, b, c]);
    a.signal();
    b.signal();
    expect(merged?.isSignaled()).toBe(false);
    c.signal();
    expect(merged?.isSignaled()).toBe(true);
  });

  it('dedup keeps the latest under 32-bit wraparound', () => {
    const ctx = allocateFenceContexts(1);
    const old = mockFence(ctx, 0xfffffffe);
    const wrapped = mockFence(ctx, 1);
    expect(dedupFences([old, wrapped])).toEqual([wrapped]);
    expect(dedupFences([wrapped, old])).toEqual([wrapped]);
  });

  it('unwrapping a chain skips points already signalled and collected', () => {
    const [f1, f2, f3] = [mockFence(), mockFence(), mockFence()];
    const chain = new DmaFenceChain(new DmaFenceChain(new DmaFenceChain(null, f1, 1), f2, 2), f3, 3);
    f2.signal();
    expect(leaves(chain)).toEqual([f3, f1]);
  });
});
