/**
 * dma_fence_chain: timeline points built as a linked list (drivers/dma-buf/dma-fence-chain.c).
 *
 * Each node wraps one fence and links to the previous point. A node is
 * signalled once its own fence and every earlier node's fence have signalled.
 * Walking the chain unlinks nodes whose fence has already signalled (garbage
 * collection), so long-running timelines stay short. Chain seqnos compare as
 * 64-bit numbers.
 *
 * Linux re-arms the node's callback from irq_work; here the re-arm runs
 * synchronously from the fence callback. It only ever walks backwards in a
 * loop, so depth does not grow with chain length.
 */
import { EINVAL } from './errno.ts';
import { DmaFence, DmaFenceCb, type DmaFenceOps } from './dma-fence.ts';
import { allocateFenceContexts, isSeqnoLater } from './fence-context.ts';

/** One timeline point (struct dma_fence_chain). */
export class DmaFenceChain extends DmaFence {
  static readonly #ops: DmaFenceOps<DmaFenceChain> = {
    getDriverName: () => 'dma_fence_chain',
    getTimelineName: () => 'unbound',
    enableSignaling: (chain) => chain.#enableSignaling(),
    signaled: (chain) => chain.#signaledPoll(),
    container: true,
  };

  /** The fence this point waits for (never itself a chain). */
  readonly fence: DmaFence;
  /** Seqno of the previous node if this node reuses its context, else 0. */
  readonly prevSeqno: number;

  #prev: DmaFence | null;
  // One callback handle, re-armed on the next unsignalled fence each time it fires.
  readonly #cb = new DmaFenceCb(() => {
    if (!this.#enableSignaling()) this.signal();
  });

  /**
   * dma_fence_chain_init. If `prev` is a chain and `seqno` is later than its
   * seqno, the node joins prev's context; otherwise it gets a new context and,
   * after a chain, a seqno of at least prev's ("always a valid sequence number").
   *
   * @param prev previous point (chain node or plain fence), or null
   * @param fence the fence this point stands for; must not be a chain
   * @param seqno timeline point
   */
  constructor(prev: DmaFence | null, fence: DmaFence, seqno: number) {
    if (toDmaFenceChain(fence) !== null) {
      // Linux WARNs: chaining through the contained fence breaks the walk.
      throw new TypeError('DmaFenceChain: the contained fence must not be a chain');
    }
    const prevChain = toDmaFenceChain(prev);
    let context: number;
    let prevSeqno = 0;
    let nodeSeqno = seqno;
    if (prevChain !== null && isSeqnoLater(seqno, prevChain.seqno, prevChain.seqno64)) {
      context = prevChain.context;
      prevSeqno = prevChain.seqno;
    } else {
      context = allocateFenceContexts(1);
      if (prevChain !== null) nodeSeqno = Math.max(prevChain.seqno, seqno);
    }
    super(DmaFenceChain.#ops, context, nodeSeqno, { seqno64: true });
    this.fence = fence;
    this.prevSeqno = prevSeqno;
    this.#prev = prev;
  }

  /** The previous point, or null at the start or after garbage collection. */
  get prev(): DmaFence | null {
    return this.#prev;
  }

  /**
   * dma_fence_chain_walk for this node: unlink previous nodes whose fence has
   * signalled, then return the previous point that is left (or null).
   */
  walk(): DmaFence | null {
    let prev: DmaFence | null;
    while ((prev = this.#prev) !== null) {
      const prevChain = toDmaFenceChain(prev);
      let replacement: DmaFence | null;
      if (prevChain !== null) {
        if (!prevChain.fence.isSignaled()) break;
        replacement = prevChain.prev;
      } else {
        if (!prev.isSignaled()) break;
        replacement = null;
      }
      this.#prev = replacement;
    }
    return prev;
  }

  // Arm the callback on the first unsignalled fence at or before this point.
  #enableSignaling(): boolean {
    for (const node of chainNodes(this)) {
      if (chainContained(node).addCallback(this.#cb) === 0) return true;
    }
    return false;
  }

  #signaledPoll(): boolean {
    for (const node of chainNodes(this)) {
      if (!chainContained(node).isSignaled()) return false;
    }
    return true;
  }
}

/** to_dma_fence_chain: the fence as a chain node, or null. */
export function toDmaFenceChain(fence: DmaFence | null | undefined): DmaFenceChain | null {
  return fence instanceof DmaFenceChain ? fence : null;
}

/** dma_fence_chain_contained: a chain node's fence, or the fence itself. */
export function chainContained(fence: DmaFence): DmaFence {
  return toDmaFenceChain(fence)?.fence ?? fence;
}

/** dma_fence_chain_walk: the next point back from `fence`; null if `fence` is not a chain. */
export function chainWalk(fence: DmaFence): DmaFence | null {
  return toDmaFenceChain(fence)?.walk() ?? null;
}

/**
 * dma_fence_chain_for_each: `head`, then each earlier point still linked,
 * collecting signalled ones on the way. A plain fence yields only itself.
 */
export function* chainNodes(head: DmaFence): Generator<DmaFence, void, undefined> {
  for (let node: DmaFence | null = head; node !== null; node = chainWalk(node)) yield node;
}

/** Result of {@link chainFindSeqno}. */
export interface FindSeqnoResult {
  /** 0, or {@link EINVAL} when `fence` is not a chain or has not reached `seqno`. */
  ret: number;
  /**
   * The point that signals `seqno` (the input when `seqno` is 0 or on error);
   * null if that point has already signalled and was collected.
   */
  fence: DmaFence | null;
}

/**
 * dma_fence_chain_find_seqno: move from `fence` (a chain head) back to the
 * node that will signal `seqno`: the earliest node whose previous point is
 * before `seqno`.
 */
export function chainFindSeqno(fence: DmaFence | null, seqno: number): FindSeqnoResult {
  if (seqno === 0) return { ret: 0, fence };
  const chain = toDmaFenceChain(fence);
  if (chain === null || chain.seqno < seqno) return { ret: EINVAL, fence };
  let node: DmaFence | null = chain;
  for (; node !== null; node = chainWalk(node)) {
    const nodeChain = toDmaFenceChain(node);
    if (nodeChain === null || nodeChain.context !== chain.context || nodeChain.prevSeqno < seqno) break;
  }
  return { ret: 0, fence: node };
}

/** dma_fence_is_chain. */
export function isFenceChain(fence: DmaFence): boolean {
  return toDmaFenceChain(fence) !== null;
}
