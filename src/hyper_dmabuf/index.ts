/** The hyper_dmabuf driver: cross-domain dma-buf sharing over grant tables. */
export { DriverState, HyperDmabuf, type HyperDmabufStats } from './driver.ts';
export { ImportEventQueue, type NewImportEvent, type ReadEventOptions } from './event-queue.ts';
export { ExportedBuffer, ExportState, type UnexportOutcome } from './export-entry.ts';
export { DEFAULT_OWNER, Exporter, type ExporterStats, type ExportOptions, type UnexportOptions } from './exporter.ts';
export { copyHid, formatHid, HidAllocator, hidKey, parseHid, sameHid, type Hid } from './hid.ts';
export type { DriverHost } from './host.ts';
export { ImportedBuffer, ImportState, type InvalidReason, type MapInfo } from './import-entry.ts';
export type { ImportedFdPriv } from './imported-ops.ts';
export { Importer, type ExportFdOptions, type ImporterStats } from './importer.ts';
export { resolveOptions, type HyperDmabufOptions, type SyncMode } from './options.ts';
export { QUERY_ITEMS, type QueryItem, type QueryResult } from './query.ts';
