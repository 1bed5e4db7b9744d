/**
 * Local Linux synchronisation model: dma_fence and its containers, dma_resv,
 * sync_file, the dma-buf sync_file bridge and the sw_sync test timeline.
 * See reference/linux-dmabuf-sync-semantics.md for the semantics mirrored.
 */
export * from './errno.ts';
export * from './clock.ts';
export * from './fence-context.ts';
export * from './dma-fence.ts';
export * from './wait-any.ts';
export * from './stub.ts';
export * from './fence-array.ts';
export * from './fence-chain.ts';
export * from './unwrap.ts';
export * from './dma-resv.ts';
export * from './sync-file.ts';
export * from './dma-buf-sync.ts';
export * from './sw-sync.ts';
