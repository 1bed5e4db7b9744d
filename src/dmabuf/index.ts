/** The local dma-buf model: buffers, attachments, scatter-gather tables, the system heap, and moves of dynamic buffers. */
export {
  Attachment, AttachmentState, DmaBuf, DmaBufState, type DmaBufInit, type DmaBufOps, type DmaBufUse, type DynamicImporterOps, type MoveNotifyResult,
} from './dma-buf.ts';
export { bufferSize, checkGeometry, geometryFor, type Geometry } from './geometry.ts';
export { MoveGateMachine, MoveGateState } from '../../protocol/machines/move-gate.ts';
export { MoveGate, type MoveBlocker, type MoveBlockingUse, type MoveStart, type MoveWaitOptions } from './move-gate.ts';
export { moveBuffer, type MoveOptions, type MoveResult, type Relocation } from './move.ts';
export { isOneRun, viewFrames, type FramesView } from './ram-vmap.ts';
export { copyFrames, relocateFrames, type RelocationCounters, type RelocationHost } from './relocation.ts';
export { RelocationState } from '../../protocol/machines/relocation.ts';
export { SgTable, type SgEntry } from './sg-table.ts';
export { isSystemHeapBuffer, SystemHeap, type SystemHeapAllocOptions, type SystemHeapHost, type SystemHeapPriv, type SystemHeapStats } from './system-heap.ts';
