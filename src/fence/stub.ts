/**
 * Stub fences: fences that are born signalled (dma_fence_get_stub, drivers/dma-buf/dma-fence.c).
 *
 * The global stub (dma_fence_get_stub) stands in wherever a fence is required
 * but nothing is pending, e.g. exporting a sync_file from an idle buffer.
 * Private stubs (dma_fence_allocate_private_stub) carry a chosen timestamp;
 * dma_fence_unwrap_merge returns one when every input has signalled.
 */
import { ktimeGetNs } from './clock.ts';
import { DmaFence, type DmaFenceOps } from './dma-fence.ts';

/** Context of the global stub fence (the v5.x context counter starts at 1). */
export const STUB_CONTEXT = 0;

const stubOps: DmaFenceOps = {
  // dma_fence_stub_get_name answers "stub" for both names.
  getDriverName: () => 'stub',
  getTimelineName: () => 'stub',
};

let globalStub: DmaFence | undefined;

/**
 * dma_fence_get_stub: the shared, already signalled fence (context 0,
 * seqno 0). Its timestamp is the time of the first call.
 */
export function getStub(): DmaFence {
  if (globalStub === undefined) {
    globalStub = new DmaFence(stubOps, STUB_CONTEXT, 0);
    globalStub.signal();
  }
  return globalStub;
}

/**
 * dma_fence_allocate_private_stub: a new signalled fence with the given
 * timestamp (ns), on context 0 / seqno 0 like the global stub.
 */
export function allocatePrivateStub(timestampNs: bigint = ktimeGetNs()): DmaFence {
  const fence = new DmaFence(stubOps, STUB_CONTEXT, 0);
  fence.signalTimestamp(timestampNs);
  return fence;
}

/** True for the global stub and private stubs. */
export function isStubFence(fence: DmaFence): boolean {
  return fence.ops === stubOps;
}
