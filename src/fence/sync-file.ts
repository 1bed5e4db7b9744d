/**
 * sync_file: a fence handed to userspace as a file (drivers/dma-buf/sync_file.c, include/uapi/linux/sync_file.h).
 *
 * In this in-process model the SyncFile object plays the file descriptor;
 * later work maps it onto descriptors passed between VMs. Entry points shaped
 * like ioctls throw {@link ErrnoError} with the ioctl's errno.
 */
import { MAX_SCHEDULE_TIMEOUT } from './clock.ts';
import { type DmaFence, DmaFenceCb, fenceTimestamp } from './dma-fence.ts';
import { EINTR, EINVAL, ENOENT, ENOTTY, ErrnoError, ERESTARTSYS } from './errno.ts';
import { mergeFences, unwrapFences } from './unwrap.ts';

/** poll(2) readiness bits (EPOLLIN, EPOLLOUT, EPOLLERR). */
export const POLLIN = 0x001;
/** Ready for writing (dma-buf: no reader or writer pending). */
export const POLLOUT = 0x004;
/** Error condition (dma-buf without a reservation object). */
export const POLLERR = 0x008;

/** Size of the name fields (char name[32]); at most 31 bytes plus NUL are kept. */
export const SYNC_NAME_LEN = 32;

/** Per-fence entry of SYNC_IOC_FILE_INFO (struct sync_fence_info). */
export interface SyncFenceInfo {
  /** Timeline name (obj_name). */
  readonly objName: string;
  /** Driver name. */
  readonly driverName: string;
  /** 0 active, 1 signalled, negative errno if signalled with an error. */
  readonly status: number;
  /** Always 0. */
  readonly flags: number;
  /** Signal time (CLOCK_MONOTONIC ns), 0 while active. */
  readonly timestampNs: bigint;
}

/** Result of SYNC_IOC_FILE_INFO (struct sync_file_info). */
export interface SyncFileInfo {
  /** The file's name. */
  readonly name: string;
  /**
   * With fences requested: the status of the first leaf, in unwrap order,
   * that is not "signalled OK" (1 if all are). Without: the merged fence's
   * status (0 / 1 / negative errno).
   */
  readonly status: number;
  /** Always 0. */
  readonly flags: number;
  /** Number of leaf fences. */
  readonly numFences: number;
  /** One entry per leaf fence; empty when the request asked for 0. */
  readonly fences: readonly SyncFenceInfo[];
}

/** Request fields of SYNC_IOC_FILE_INFO. */
export interface SyncFileInfoRequest {
  /** Capacity for per-fence entries; 0 (default) asks only for the count. */
  numFences?: number;
  /** Must be 0. */
  flags?: number;
  /** Must be 0. */
  pad?: number;
}

// strscpy into char[32]: at most 31 bytes, without splitting a character.
function truncateName(name: string): string {
  const encoder = new TextEncoder();
  let out = '';
  let bytes = 0;
  for (const ch of name) {
    const size = encoder.encode(ch).length;
    if (bytes + size > SYNC_NAME_LEN - 1) break;
    out += ch;
    bytes += size;
  }
  return out;
}

/** A sync_file (struct sync_file) wrapping one fence. */
export class SyncFile {
  /** The fence; a merged file holds a single fence or an array. */
  readonly fence: DmaFence;
  #userName: string;
  #pollArmed = false;

  private constructor(fence: DmaFence, name: string) {
    this.fence = fence;
    this.#userName = truncateName(name);
  }

  /**
   * sync_file_create: a file for `fence`.
   * @param name optional user name; without one the name is derived from the fence
   */
  static create(fence: DmaFence, name = ''): SyncFile {
    return new SyncFile(fence, name);
  }

  /**
   * sync_file_get_name: the user name, or "driver-timeline<context>-<seqno>"
   * of the fence, at most 31 bytes.
   */
  get name(): string {
    if (this.#userName !== '') return this.#userName;
    const f = this.fence;
    return truncateName(`${f.driverName}-${f.timelineName}${f.context}-${f.seqno}`);
  }

  /**
   * poll(): POLLIN once the fence has signalled, with or without error. The
   * first poll arms a callback, i.e. enables signalling on the fence.
   */
  poll(): number {
    if (!this.#pollArmed) {
      this.#pollArmed = true;
      this.fence.addCallback(new DmaFenceCb(() => {}));
    }
    return this.fence.isSignaled() ? POLLIN : 0;
  }

  /**
   * poll() with a timeout, as sync_wait() in the selftests.
   * @param timeoutMs negative for no limit, 0 to only check
   * @param abort interrupts the wait: resolves {@link EINTR}
   * @returns 1 when signalled, 0 on timeout
   */
  async wait(timeoutMs = -1, abort?: AbortSignal): Promise<number> {
    if ((this.poll() & POLLIN) !== 0) return 1;
    if (timeoutMs === 0) return 0;
    const ret = await this.fence.wait(timeoutMs < 0 ? MAX_SCHEDULE_TIMEOUT : timeoutMs, abort);
    if (ret === ERESTARTSYS) return EINTR;
    return ret > 0 ? 1 : 0;
  }

  /**
   * SYNC_IOC_FILE_INFO.
   * @throws ErrnoError EINVAL if flags/pad are set, or `numFences` is non-zero
   *   but smaller than the number of leaf fences
   */
  getInfo(request: SyncFileInfoRequest = {}): SyncFileInfo {
    const { numFences = 0, flags = 0, pad = 0 } = request;
    if (flags !== 0 || pad !== 0) throw new ErrnoError(EINVAL, 'SYNC_IOC_FILE_INFO: flags and pad must be 0');
    const leaves = [...unwrapFences(this.fence)];
    if (numFences === 0) {
      return { name: this.name, status: this.fence.getStatus(), flags: 0, numFences: leaves.length, fences: [] };
    }
    if (numFences < leaves.length) {
      throw new ErrnoError(EINVAL, `SYNC_IOC_FILE_INFO: room for ${numFences} fences, need ${leaves.length}`);
    }
    let status = 1;
    const fences = leaves.map((leaf) => {
      const info = fenceInfo(leaf);
      // The first non-OK status sticks, exactly as the kernel's fold does.
      status = status <= 0 ? status : info.status;
      return info;
    });
    return { name: this.name, status, flags: 0, numFences: leaves.length, fences };
  }

  /**
   * SYNC_IOC_SET_DEADLINE: pass a deadline hint (CLOCK_MONOTONIC ns) to the fence.
   * @throws ErrnoError EINVAL if pad is set
   */
  setDeadline(deadlineNs: bigint, pad = 0): void {
    if (pad !== 0) throw new ErrnoError(EINVAL, 'SYNC_IOC_SET_DEADLINE: pad must be 0');
    this.fence.setDeadline(deadlineNs);
  }
}

// sync_fill_fence_info.
function fenceInfo(fence: DmaFence): SyncFenceInfo {
  const status = fence.getStatus();
  return {
    objName: truncateName(fence.timelineName),
    driverName: truncateName(fence.driverName),
    status,
    flags: 0,
    timestampNs: fence.isSignaled() ? fenceTimestamp(fence) : 0n,
  };
}

/** sync_file_get_fence: the fence of a sync_file, or null if `file` is not one. */
export function syncFileGetFence(file: unknown): DmaFence | null {
  return file instanceof SyncFile ? file.fence : null;
}

/**
 * SYNC_IOC_MERGE: a new file whose fence signals when both inputs have
 * (dma_fence_unwrap_merge: signalled leaves dropped, latest per context kept).
 *
 * @param name name of the new file
 * @param a the file the ioctl is issued on
 * @param b the `fd2` operand
 * @throws ErrnoError EINVAL for non-zero flags/pad, ENOENT if `b` is not a
 *   sync_file, ENOTTY if `a` is not one
 */
export function syncFileMerge(name: string, a: SyncFile, b: unknown, flags = 0, pad = 0): SyncFile {
  if (!(a instanceof SyncFile)) throw new ErrnoError(ENOTTY, 'SYNC_IOC_MERGE: not a sync_file');
  if (flags !== 0 || pad !== 0) throw new ErrnoError(EINVAL, 'SYNC_IOC_MERGE: flags and pad must be 0');
  const other = syncFileGetFence(b);
  if (other === null) throw new ErrnoError(ENOENT, 'SYNC_IOC_MERGE: fd2 is not a sync_file');
  return SyncFile.create(mergeFences(a.fence, other), name);
}
