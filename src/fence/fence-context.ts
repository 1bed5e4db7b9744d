/**
 * Fence contexts and seqno ordering (dma_fence_context_alloc, include/linux/dma-fence.h).
 *
 * A context is one timeline: fences on it are totally ordered by seqno.
 */

// v5.x starts the counter at 1 so that context 0 is left to the stub fence.
let nextContext = 1;

/**
 * Hands out `num` consecutive fence contexts and returns the first
 * (dma_fence_context_alloc). Contexts are never reused in one process.
 */
export function allocateFenceContexts(num: number): number {
  if (!Number.isSafeInteger(num) || num < 1) {
    throw new RangeError(`allocateFenceContexts: num must be a positive integer, got ${num}`);
  }
  const first = nextContext;
  nextContext += num;
  return first;
}

/**
 * Seqno ordering (__dma_fence_is_later): with `seqno64` a plain comparison,
 * otherwise the lower 32 bits are compared with wraparound, so 0 is later
 * than 0xffffffff and a point more than 2^31 ahead counts as earlier.
 */
export function isSeqnoLater(seqno1: number, seqno2: number, seqno64: boolean): boolean {
  if (seqno64) return seqno1 > seqno2;
  // `>>> 0` takes the lower 32 bits; `| 0` is the (int) cast of the difference.
  return (((seqno1 >>> 0) - (seqno2 >>> 0)) | 0) > 0;
}
