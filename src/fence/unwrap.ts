/**
 * dma_fence_unwrap and dma_fence_unwrap_merge (drivers/dma-buf/dma-fence-unwrap.c).
 *
 * Containers are flattened before they are combined or stored, so no
 * container ever ends up inside another one.
 */
import { type DmaFence, fenceTimestamp, isLater } from './dma-fence.ts';
import { allocateFenceContexts } from './fence-context.ts';
import { DmaFenceArray, toDmaFenceArray } from './fence-array.ts';
import { chainContained, chainNodes } from './fence-chain.ts';
import { allocatePrivateStub } from './stub.ts';

/**
 * dma_fence_unwrap_for_each: the leaf fences of `head`. A chain yields each
 * node's contained fence (itself unwrapped if an array) from the head back,
 * skipping points the walk collects as signalled; an array yields its members
 * in order; a plain fence yields itself.
 */
export function* unwrapFences(head: DmaFence): Generator<DmaFence, void, undefined> {
  for (const node of chainNodes(head)) {
    const contained = chainContained(node);
    const array = toDmaFenceArray(contained);
    if (array !== null) yield* array.fences;
    else yield contained;
  }
}

// fence_cmp: by context, then later seqno first, so dedup keeps the latest.
function fenceCompare(a: DmaFence, b: DmaFence): number {
  if (a.context !== b.context) return a.context < b.context ? -1 : 1;
  if (isLater(b, a)) return 1;
  if (isLater(a, b)) return -1;
  return 0;
}

/**
 * dma_fence_dedup_array: sort by context and keep only the latest fence of
 * each context.
 * @returns a new array; the input is not modified
 */
export function dedupFences(fences: readonly DmaFence[]): DmaFence[] {
  const sorted = [...fences].sort(fenceCompare);
  const out: DmaFence[] = [];
  for (const fence of sorted) {
    const last = out[out.length - 1];
    if (last === undefined || last.context !== fence.context) out.push(fence);
  }
  return out;
}

/**
 * dma_fence_unwrap_merge: one fence that signals when all of `fences` have.
 *
 * Unwraps every input, drops signalled leaves (remembering the latest signal
 * time) and keeps the latest leaf per context. The result is a private
 * signalled stub carrying that time if nothing is pending, the single pending
 * leaf if there is one, else a new all-signal {@link DmaFenceArray} on a fresh
 * context with seqno 1, its members ordered by context.
 */
export function mergeFences(...fences: DmaFence[]): DmaFence {
  let timestamp = 0n;
  const pending: DmaFence[] = [];
  for (const fence of fences) {
    for (const leaf of unwrapFences(fence)) {
      if (!leaf.isSignaled()) {
        pending.push(leaf);
        continue;
      }
      const t = fenceTimestamp(leaf);
      if (t > timestamp) timestamp = t;
    }
  }
  const deduped = pending.length > 1 ? dedupFences(pending) : pending;
  const [first] = deduped;
  if (first === undefined) return allocatePrivateStub(timestamp);
  if (deduped.length === 1) return first;
  return new DmaFenceArray(deduped, allocateFenceContexts(1), 1, false);
}
