/** The hyper_dmabuf driver: cross-domain dma-buf sharing over grant tables. */
export { DriverState, HyperDmabuf, type HyperDmabufStats } from './driver.ts';
export { ImportEventQueue, type NewImportEvent, type ReadEventOptions } from './event-queue.ts';
export { ExportMachine, ExportMoveMachine, ExportMoveState, ExportState } from '../../protocol/machines/export.ts';
export { BufferImportMachine, BufferImportState, ImportMapMachine, ImportMapState } from '../../protocol/machines/import.ts';
export { ExportedBuffer, type PreparedLocation, type UnexportOutcome } from './export-entry.ts';
export { ExportMover, type ExportMoveCounters } from './export-move.ts';
export { DEFAULT_OWNER, Exporter, type ExporterStats, type ExportOptions, type UnexportOptions } from './exporter.ts';
export { copyHid, formatHid, HidAllocator, hidKey, parseHid, sameHid, type Hid } from './hid.ts';
export type { DriverHost } from './host.ts';
export { ImportedBuffer, type InvalidReason, type MapInfo } from './import-entry.ts';
export { ImportMover, type ImportMoveCounters } from './import-move.ts';
export type { FdConfirmation, ImportedFdPriv } from './imported-ops.ts';
export { Importer, type ExportFdOptions, type ImporterStats } from './importer.ts';
export { REMAP_MODES, resolveOptions, type HyperDmabufOptions, type RemapMode, type SyncMode } from './options.ts';
export { QUERY_ITEMS, type QueryItem, type QueryResult } from './query.ts';
