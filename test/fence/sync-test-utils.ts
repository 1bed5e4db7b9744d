/** Helpers mirroring the selftest and IGT sync libraries (sync.c, lib/sw_sync.c). */
import { ETIME } from '../../src/fence/errno.ts';
import type { SyncFile } from '../../src/fence/sync-file.ts';

/** FENCE_STATUS_* of the selftests. */
export const FENCE_STATUS_ERROR = -1;
/** Active (pending). */
export const FENCE_STATUS_ACTIVE = 0;
/** Signalled. */
export const FENCE_STATUS_SIGNALED = 1;

/** selftests sync_wait(fd, timeout): >0 signalled, 0 timeout (poll semantics). */
export function syncWait(file: SyncFile, timeoutMs: number): Promise<number> {
  return file.wait(timeoutMs);
}

/** IGT sync_fence_wait(fd, ms): 0 if signalled, -ETIME on timeout. */
export async function igtWait(file: SyncFile, timeoutMs: number): Promise<number> {
  return (await file.wait(timeoutMs)) > 0 ? 0 : ETIME;
}

/** sync_fence_size: number of leaf fences (FILE_INFO with num_fences = 0). */
export function fenceSize(file: SyncFile): number {
  return file.getInfo().numFences;
}

/**
 * sync_fence_count_with_status: leaves with `status` (ERROR matches any
 * negative status).
 */
export function countWithStatus(file: SyncFile, status: number): number {
  const { fences } = file.getInfo({ numFences: fenceSize(file) });
  return fences.filter((f) => (status === FENCE_STATUS_ERROR ? f.status < 0 : f.status === status)).length;
}

/** IGT sync_fence_status: FILE_INFO with one entry, that entry's status. */
export function fenceStatus(file: SyncFile): number {
  const [first] = file.getInfo({ numFences: 1 }).fences;
  if (first === undefined) throw new Error('no fence info');
  return first.status;
}
