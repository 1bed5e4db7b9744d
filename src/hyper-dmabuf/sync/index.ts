/**
 * Fences on shared buffers across VMs: one authoritative reservation
 * object per buffer at its exporter, importers' adds and snapshots by
 * message, the sync_file bridge, poll readiness and implicit
 * synchronisation of CPU access. SPEC.md section 11A.
 */
export * from './usage.ts';
export * from './aggregate-fence.ts';
export * from './shared-resv.ts';
export * from './resv-registry.ts';
export * from './resv-server.ts';
export * from './resv-client.ts';
export * from './cpu-sync.ts';
export * from './dmabuf-sync.ts';
