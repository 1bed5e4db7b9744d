/** The local dma-buf model: buffers, attachments, scatter-gather tables and the system heap. */
export { Attachment, AttachmentState, DmaBuf, DmaBufState, type DmaBufInit, type DmaBufOps, type DmaBufUse } from './dma-buf.ts';
export { bufferSize, checkGeometry, geometryFor, type Geometry } from './geometry.ts';
export { isOneRun, viewFrames, type FramesView } from './ram-vmap.ts';
export { SgTable, type SgEntry } from './sg-table.ts';
export { isSystemHeapBuffer, SystemHeap, type SystemHeapAllocOptions, type SystemHeapHost, type SystemHeapPriv, type SystemHeapStats } from './system-heap.ts';
