/**
 * Explicit/implicit sync bridge of a dma-buf (drivers/dma-buf/dma-buf.c):
 * DMA_BUF_IOCTL_EXPORT_SYNC_FILE, DMA_BUF_IOCTL_IMPORT_SYNC_FILE and poll()
 * on the buffer, all in terms of the buffer's {@link DmaResv}.
 */
import { DmaResv, DmaResvUsage, usageRw } from './dma-resv.ts';
import { EINVAL, ErrnoError } from './errno.ts';
import { getStub } from './stub.ts';
import { POLLERR, POLLIN, POLLOUT, SyncFile, syncFileGetFence } from './sync-file.ts';
import { unwrapFences } from './unwrap.ts';

/** DMA_BUF_SYNC_READ. */
export const DMA_BUF_SYNC_READ = 1 << 0;
/** DMA_BUF_SYNC_WRITE. */
export const DMA_BUF_SYNC_WRITE = 2 << 0;
/** DMA_BUF_SYNC_RW: behaves exactly like WRITE for export and import. */
export const DMA_BUF_SYNC_RW = DMA_BUF_SYNC_READ | DMA_BUF_SYNC_WRITE;

/** Access direction: a name, or the uAPI flag bits (validated). */
export type DmaBufSyncAccess = 'read' | 'write' | 'rw' | number;

// The ioctls' flag checks: only RW bits, and at least one of them.
function accessFlags(access: DmaBufSyncAccess, ioctl: string): number {
  const flags = access === 'read' ? DMA_BUF_SYNC_READ : access === 'write' ? DMA_BUF_SYNC_WRITE : access === 'rw' ? DMA_BUF_SYNC_RW : access;
  if (typeof flags !== 'number' || !Number.isInteger(flags) || (flags & ~DMA_BUF_SYNC_RW) !== 0 || (flags & DMA_BUF_SYNC_RW) === 0) {
    throw new ErrnoError(EINVAL, `${ioctl}: invalid flags ${String(access)}`);
  }
  return flags;
}

/**
 * DMA_BUF_IOCTL_EXPORT_SYNC_FILE: a sync_file for the buffer's current
 * implicit fences. 'read' waits for writers (the POLLIN condition), 'write' and
 * 'rw' for every reader and writer (POLLOUT); BOOKKEEP fences never count.
 * It is a snapshot: fences added afterwards are not included. With nothing
 * pending the file holds the signalled stub, so it is always valid.
 *
 * @throws ErrnoError EINVAL for invalid flags
 */
export function exportSyncFile(resv: DmaResv, access: DmaBufSyncAccess): SyncFile {
  const flags = accessFlags(access, 'DMA_BUF_IOCTL_EXPORT_SYNC_FILE');
  const fence = resv.getSingleton(usageRw((flags & DMA_BUF_SYNC_WRITE) !== 0));
  return SyncFile.create(fence ?? getStub());
}

/**
 * DMA_BUF_IOCTL_IMPORT_SYNC_FILE: add every leaf fence of `file` to `resv`,
 * one by one, with READ usage ('read': later implicit writes wait for it) or
 * WRITE usage ('write' / 'rw': every later implicit access waits). Existing
 * fences are never removed; only {@link DmaResv.addFence}'s replacement rule
 * applies, so importing cannot hide pending work.
 *
 * @throws ErrnoError EINVAL for invalid flags or if `file` is not a sync_file
 */
export function importSyncFile(resv: DmaResv, file: unknown, access: DmaBufSyncAccess): void {
  const flags = accessFlags(access, 'DMA_BUF_IOCTL_IMPORT_SYNC_FILE');
  const fence = syncFileGetFence(file);
  if (fence === null) throw new ErrnoError(EINVAL, 'DMA_BUF_IOCTL_IMPORT_SYNC_FILE: not a sync_file');
  const usage = (flags & DMA_BUF_SYNC_WRITE) !== 0 ? DmaResvUsage.WRITE : DmaResvUsage.READ;
  // Leaves, never containers: a container here would let repeated imports
  // build the unbounded fence trees Linux had to forbid.
  for (const leaf of [...unwrapFences(fence)]) resv.addFence(leaf, usage);
}

/**
 * poll() readiness of a dma-buf fd (6.x): POLLIN when no KERNEL/WRITE fence is
 * pending (safe to read), POLLOUT when no KERNEL/WRITE/READ fence is pending
 * (safe to write). Only the requested events are reported.
 *
 * @param resv the buffer's reservation object; null reports POLLERR
 * @param events requested POLLIN / POLLOUT bits
 * @returns the ready subset of `events`
 */
export function dmaBufPoll(resv: DmaResv | null, events: number): number {
  if (resv === null) return POLLERR;
  let ready = 0;
  if ((events & POLLIN) !== 0 && resv.testSignaled(usageRw(false))) ready |= POLLIN;
  if ((events & POLLOUT) !== 0 && resv.testSignaled(usageRw(true))) ready |= POLLOUT;
  return ready;
}
