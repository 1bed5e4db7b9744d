/** Public surface of the protocol package: declarations, codec, errors, limits. */
export * from './codec.ts';
export * from './envelope.ts';
export * from './errors.ts';
export * from './grant-abi.ts';
export * from './limits.ts';
export * from './message.ts';
export * from './packed.ts';
export * from './registry.ts';
export * from './schema.ts';
export * from './version.ts';
export * as control from './messages/control.ts';
export * as dmabuf from './messages/dmabuf.ts';
export * as dmabufSync from './messages/dmabuf-sync.ts';
export * as evtchn from './messages/evtchn.ts';
export * as fence from './messages/fence.ts';
export * as grant from './messages/grant.ts';
export * as session from './messages/session.ts';
export * as sim from './messages/sim.ts';
