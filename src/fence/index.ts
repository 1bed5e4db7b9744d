/**
 * Local Linux synchronisation model: dma_fence and its containers, dma_resv,
 * sync_file, the dma-buf sync_file bridge and the sw_sync test timeline.
 * The semantics are Linux's (drivers/dma-buf/, include/linux/dma-fence*.h,
 * include/linux/dma-resv.h); SPEC.md 11A builds the cross-VM layer on them.
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
export * from './dma-buf-sync-file.ts';
export * from './sw-sync.ts';
