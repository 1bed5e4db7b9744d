/**
 * The package's library entry (`import { Backend, GuestKernel, HyperDmabuf } from 'hdmabuf'`):
 * the grant-table backend, a guest kernel that boots against it, the
 * hyper_dmabuf driver on a kernel, and the fence and reservation layers
 * (FenceHost, DmabufSync) with which a domain answers every routed message. README "Using it as a library" shows a
 * whole share; protocol/SPEC.md is the reference for what they exchange.
 */
export { Backend, type BackendOptions, type BackendState, type DomainCreated, type HvStatsBody } from './hv/backend.ts';
export { GuestKernel, type GuestKernelBootOptions, type GuestKernelState, type GuestKernelStats } from './guest/kernel.ts';
export { HyperDmabuf, type HyperDmabufStats } from './hyper-dmabuf/driver.ts';
export { FenceHost, type FenceHostOptions, type FenceHostStats } from './fence-remote/fence-host.ts';
export { DmabufSync, type DmabufSyncOptions, type DmabufSyncStats } from './hyper-dmabuf/sync/dmabuf-sync.ts';
