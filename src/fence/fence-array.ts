/**
 * dma_fence_array: one fence standing for several (drivers/dma-buf/dma-fence-array.c).
 *
 * It signals when all members have signalled, or with `signalOnAny` when the
 * first one does. The first error reported by a member is propagated, but only
 * before the array itself signals. Arrays never contain containers: nesting
 * them is what let userspace build unbounded recursive structures in Linux.
 *
 * Linux signals the array from irq_work so it never runs inside a member's
 * spinlock; there are no locks here, so the array signals synchronously from
 * the member's callback. `isSignaled()` is immediate in both.
 */
import { DmaFence, DmaFenceCb, type DmaFenceOps, isFenceContainer } from './dma-fence.ts';

/** A container fence over member fences (struct dma_fence_array). */
export class DmaFenceArray extends DmaFence {
  static readonly #ops: DmaFenceOps<DmaFenceArray> = {
    getDriverName: () => 'dma_fence_array',
    getTimelineName: () => 'unbound',
    enableSignaling: (array) => array.#enableSignaling(),
    signaled: (array) => array.#signaledPoll(),
    container: true,
  };

  /** The member fences, in the order given. */
  readonly fences: readonly DmaFence[];
  /** Signal on the first member instead of on all of them. */
  readonly signalOnAny: boolean;

  #numPending: number;
  #pendingError = 0;
  #armed: Array<{ fence: DmaFence; cb: DmaFenceCb }> = [];

  /**
   * dma_fence_array_create.
   * @param fences members; at least one, none of them a container
   * @param context fence context of the array itself
   * @param seqno seqno of the array on that context
   * @param signalOnAny signal when any member signals instead of all
   */
  constructor(fences: readonly DmaFence[], context: number, seqno: number, signalOnAny = false) {
    if (fences.length === 0) throw new RangeError('DmaFenceArray: needs at least one fence');
    for (const fence of fences) {
      if (!(fence instanceof DmaFence)) throw new TypeError('DmaFenceArray: member is not a DmaFence');
      // Linux WARNs; nesting risks recursion over unbounded depth, so refuse it.
      if (isFenceContainer(fence)) throw new TypeError('DmaFenceArray: containers must not nest');
    }
    super(DmaFenceArray.#ops, context, seqno);
    this.fences = Object.freeze([...fences]);
    this.signalOnAny = signalOnAny;
    this.#numPending = signalOnAny ? 1 : fences.length;
  }

  /** Number of members. */
  get numFences(): number {
    return this.fences.length;
  }

  // First error wins, and only while the array is unsignalled.
  #notePending(error: number): void {
    if (error !== 0 && this.#pendingError === 0) this.#pendingError = error;
  }

  #publishError(): void {
    if (this.#pendingError !== 0) this.setError(this.#pendingError);
  }

  #enableSignaling(): boolean {
    for (const fence of this.fences) {
      const cb = new DmaFenceCb((member) => this.#memberSignaled(member));
      if (fence.addCallback(cb) === 0) {
        this.#armed.push({ fence, cb });
        continue;
      }
      // Already signalled: count it now, as dma_fence_array_enable_signaling does.
      this.#notePending(fence.error);
      if (--this.#numPending === 0) {
        this.#publishError();
        this.#disarm();
        return false;
      }
    }
    return true;
  }

  #memberSignaled(member: DmaFence): void {
    if (this.testSignaledFlag()) return;
    this.#notePending(member.error);
    if (--this.#numPending === 0) {
      this.#publishError();
      this.signal();
      this.#disarm();
    }
  }

  // After signalling (any-mode) the other members' callbacks are useless.
  #disarm(): void {
    for (const { fence, cb } of this.#armed) fence.removeCallback(cb);
    this.#armed = [];
  }

  // dma_fence_array_signaled: without enable_signaling nothing is counted
  // yet, so poll the members (in order, so the error reported is stable).
  #signaledPoll(): boolean {
    if (this.signalingEnabled) return this.#numPending <= 0;
    let pending = this.#numPending;
    let error = 0;
    for (const fence of this.fences) {
      if (!fence.isSignaled()) continue;
      if (error === 0) error = fence.error;
      if (--pending === 0) {
        this.#notePending(error);
        this.#publishError();
        return true;
      }
    }
    return false;
  }
}

/** to_dma_fence_array: the fence as an array, or null. */
export function toDmaFenceArray(fence: DmaFence | null | undefined): DmaFenceArray | null {
  return fence instanceof DmaFenceArray ? fence : null;
}

/**
 * dma_fence_match_context: true if `fence` is on `context`, or is an array all
 * of whose members are.
 */
export function matchesContext(fence: DmaFence, context: number): boolean {
  const array = toDmaFenceArray(fence);
  if (array === null) return fence.context === context;
  return array.fences.every((f) => f.context === context);
}
