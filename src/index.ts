/**
 * The package's library entry (`import { Backend, GuestKernel, HyperDmabuf } from 'hdmabuf'`):
 * the grant-table backend, a guest kernel that boots against it, and the
 * hyper_dmabuf driver on a kernel. README "Using it as a library" shows a
 * whole share; protocol/SPEC.md is the reference for what they exchange.
 */
export { Backend, type BackendOptions, type BackendState, type DomainCreated, type HvStatsBody } from './hv/backend.ts';
export { GuestKernel, type GuestKernelBootOptions, type GuestKernelState, type GuestKernelStats } from './guest/kernel.ts';
export { HyperDmabuf, type HyperDmabufStats } from './hyper_dmabuf/driver.ts';
