/** dma_fence_array: all / any, error propagation, no nesting. */
import { describe, expect, it } from 'vitest';
import { DmaFenceCb } from '../../src/fence/dma-fence.ts';
import { allocateFenceContexts } from '../../src/fence/fence-context.ts';
import { EIO, ENOENT, ETIMEDOUT } from '../../src/fence/errno.ts';
import { DmaFenceArray, matchesContext, toDmaFenceArray } from '../../src/fence/fence-array.ts';
import { DmaFenceChain } from '../../src/fence/fence-chain.ts';
import { mockFence } from './helpers.ts';

function makeArray(n: number, any = false): { array: DmaFenceArray; fences: ReturnType<typeof mockFence>[] } {
  const fences = Array.from({ length: n }, () => mockFence());
  return { array: new DmaFenceArray(fences, allocateFenceContexts(1), 1, any), fences };
}

describe('dma_fence_array', () => {
  it('all-mode signals only when every member has, in any order', () => {
    const { array, fences } = makeArray(3);
    let fired = 0;
    array.addCallback(new DmaFenceCb(() => fired++));
    fences[2]?.signal();
    fences[0]?.signal();
    expect(array.isSignaled()).toBe(false);
    fences[1]?.signal();
    expect(fired).toBe(1);
    expect(array.getStatus()).toBe(1);
  });

  it('any-mode signals on the first member and lets go of the others', () => {
    const { array, fences } = makeArray(3, true);
    const waiting = array.wait(1000);
    fences[1]?.signal();
    expect(array.testSignaledFlag()).toBe(true);
    expect(fences[0]?.pendingCallbacks).toBe(0);
    expect(fences[2]?.pendingCallbacks).toBe(0);
    return expect(waiting).resolves.toBeGreaterThan(0);
  });

  it('is signalled without enable_signaling once the members are (polled)', () => {
    const { array, fences } = makeArray(2);
    for (const f of fences) f.signal();
    expect(array.signalingEnabled).toBe(false);
    expect(array.isSignaled()).toBe(true);
    const any = makeArray(2, true);
    any.fences[1]?.signal();
    expect(any.array.isSignaled()).toBe(true);
  });

  it('enabling signalling on an array of signalled members signals it at once', () => {
    const { array, fences } = makeArray(2);
    for (const f of fences) f.signal();
    expect(array.addCallback(new DmaFenceCb(() => {}))).toBe(ENOENT);
    expect(array.testSignaledFlag()).toBe(true);
  });

  it('propagates the first error reported by a member', () => {
    const { array, fences } = makeArray(3);
    array.enableSwSignaling();
    fences[1]?.setError(ETIMEDOUT);
    fences[1]?.signal();
    fences[0]?.setError(EIO);
    fences[0]?.signal();
    fences[2]?.signal();
    expect(array.getStatus()).toBe(ETIMEDOUT);
  });

  it('counts errors of members that signalled before enable_signaling', () => {
    const { array, fences } = makeArray(2);
    fences[0]?.setError(EIO);
    fences[0]?.signal();
    array.enableSwSignaling();
    fences[1]?.signal();
    expect(array.getStatus()).toBe(EIO);
  });

  it('ignores member errors after it has signalled (any-mode)', () => {
    const { array, fences } = makeArray(2, true);
    array.enableSwSignaling();
    fences[0]?.signal();
    fences[1]?.setError(EIO);
    fences[1]?.signal();
    expect(array.getStatus()).toBe(1);
  });

  it('refuses containers as members, and an empty list', () => {
    const { array } = makeArray(1);
    const chain = new DmaFenceChain(null, mockFence(), 1);
    expect(() => new DmaFenceArray([array], allocateFenceContexts(1), 1)).toThrow(TypeError);
    expect(() => new DmaFenceArray([chain], allocateFenceContexts(1), 1)).toThrow(TypeError);
    expect(() => new DmaFenceArray([], allocateFenceContexts(1), 1)).toThrow(RangeError);
  });

  it('identifies itself and matches contexts', () => {
    const ctx = allocateFenceContexts(1);
    const same = new DmaFenceArray([mockFence(ctx, 1), mockFence(ctx, 2)], allocateFenceContexts(1), 1);
    expect(toDmaFenceArray(same)).toBe(same);
    expect(toDmaFenceArray(mockFence())).toBeNull();
    expect(same.driverName).toBe('dma_fence_array');
    expect(same.numFences).toBe(2);
    expect(matchesContext(same, ctx)).toBe(true);
    expect(matchesContext(makeArray(2).array, ctx)).toBe(false);
  });
});
