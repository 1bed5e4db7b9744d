/**
 * Usage classes and access directions, between their wire names
 * (protocol/messages/dmabuf-sync.ts), the local model's DmaResvUsage, the
 * uAPI's DMA_BUF_SYNC_* flags and the DMA directions of CPU access.
 */
import { ProtocolError } from '../../../protocol/errors.ts';
import type { DmaDirection } from '../../../protocol/messages/dmabuf.ts';
import { RESV_PEER_USAGES, RESV_USAGES, type ResvPeerUsageName, type ResvUsageName } from '../../../protocol/messages/dmabuf-sync.ts';
import { DMA_BUF_SYNC_READ, DMA_BUF_SYNC_RW, DMA_BUF_SYNC_WRITE, type DmaBufSyncAccess } from '../../fence/dma-buf-sync-file.ts';
import { DmaResvUsage } from '../../fence/dma-resv.ts';
import { EINVAL, ErrnoError } from '../../fence/errno.ts';

/** A usage as callers may give it: the enum value or its wire name. */
export type UsageArg = DmaResvUsage | ResvUsageName;

/** The wire name of a usage class. */
export function usageToWire(usage: DmaResvUsage): ResvUsageName {
  const name = RESV_USAGES[usage];
  if (name === undefined) throw new ProtocolError('ERR_BAD_ARGUMENT', `usage ${String(usage)} is not a dma_resv usage`);
  return name;
}

/** A usage class from its enum value or wire name; ERR_BAD_ARGUMENT otherwise. */
export function usageOf(arg: UsageArg | unknown): DmaResvUsage {
  if (typeof arg === 'number' && Number.isInteger(arg) && arg >= DmaResvUsage.KERNEL && arg <= DmaResvUsage.BOOKKEEP) return arg as DmaResvUsage;
  const at = typeof arg === 'string' ? (RESV_USAGES as readonly string[]).indexOf(arg) : -1;
  if (at < 0) throw new ProtocolError('ERR_BAD_ARGUMENT', `usage must be one of ${RESV_USAGES.join(', ')}, not ${String(arg)}`);
  return at as DmaResvUsage;
}

/** The wire name of a usage an importer may add; ERR_BAD_ARGUMENT for kernel (the exporter's own). */
export function peerUsageToWire(usage: DmaResvUsage): ResvPeerUsageName {
  const name = usageToWire(usage);
  if (!(RESV_PEER_USAGES as readonly string[]).includes(name)) {
    throw new ProtocolError('ERR_BAD_ARGUMENT', `an importer cannot add ${name} fences: kernel fences are the exporter's own memory management`);
  }
  return name as ResvPeerUsageName;
}

/**
 * True if CPU access in `dir` writes the buffer (dma_buf_begin_cpu_access:
 * BIDIRECTIONAL and TO_DEVICE write, FROM_DEVICE only reads).
 */
export function isWriteAccess(dir: DmaDirection): boolean {
  return dir === 'bidirectional' || dir === 'to_device';
}

/**
 * The DMA_BUF_SYNC_* flags of an export or import request, checked as the
 * ioctls check them: only RW bits, at least one.
 * @throws ErrnoError EINVAL
 */
export function syncAccessFlags(access: DmaBufSyncAccess, ioctl: string): number {
  const flags = access === 'read' ? DMA_BUF_SYNC_READ : access === 'write' ? DMA_BUF_SYNC_WRITE : access === 'rw' ? DMA_BUF_SYNC_RW : access;
  if (typeof flags !== 'number' || !Number.isInteger(flags) || (flags & ~DMA_BUF_SYNC_RW) !== 0 || (flags & DMA_BUF_SYNC_RW) === 0) {
    throw new ErrnoError(EINVAL, `${ioctl}: invalid flags ${String(access)}`);
  }
  return flags;
}

/** True if the flags include WRITE (export: wait for every user; import: a write fence). */
export function syncAccessWrites(flags: number): boolean {
  return (flags & DMA_BUF_SYNC_WRITE) !== 0;
}
