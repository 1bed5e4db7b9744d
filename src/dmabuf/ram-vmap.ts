/**
 * Contiguous views of a domain's own frames. A buffer whose frames form one
 * run is a plain subarray of the RAM mapping (no system call); a scattered
 * buffer gets a vmap: the frames mapped in order into one fresh address
 * range by the native addon, unmapped (and detached) deterministically.
 */
import { closeSync, openSync } from 'node:fs';
import { PAGE_SIZE } from '../../protocol/limits.ts';
import type { GuestRam } from '../guest/guest-ram.ts';
import { nativeMem } from '../memory/native.ts';

/** A view of frames, and how to let it go. */
export interface FramesView {
  /** The frames' bytes, contiguous, in order. */
  readonly bytes: Uint8Array;
  /** True if the view is its own mapping (released by unmap), false if it is part of the RAM mapping. */
  readonly mapped: boolean;
  /** Unmaps a vmap (the view is detached); nothing for a RAM subarray. Idempotent. */
  unmap(): void;
}

/** True if frames are one ascending run. */
export function isOneRun(frames: ArrayLike<number>): boolean {
  for (let i = 1; i < frames.length; i++) if (frames[i] !== frames[0]! + i) return false;
  return true;
}

/**
 * A contiguous view of `frames` of `ram` (writable). With `detachable`, the
 * view is always its own mapping, even over one run, so that unmap can
 * detach it (a movable buffer's views must die when its pages move).
 */
export function viewFrames(ram: GuestRam, frames: Uint32Array, detachable = false): FramesView {
  if (frames.length === 0) throw new RangeError('no frames to view');
  if (isOneRun(frames) && !detachable) {
    return { bytes: ram.pages(frames[0]!, frames.length), mapped: false, unmap: () => undefined };
  }
  // Validate against RAM first: the addon would map whatever the file holds. One check of the RAM's
  // state, then only the bound per frame (a Uint32Array holds non-negative integers); ram.pages
  // throws the RAM's own error for the first frame outside it, without a subarray per page.
  ram.pages(frames[0]!, 1);
  for (let i = 0; i < frames.length; i++) if (frames[i]! >= ram.memPages) ram.pages(frames[i]!, 1);
  const fd = openSync(ram.path, 'r+');
  let buffer: ArrayBuffer;
  try {
    buffer = nativeMem.mapPages(fd, frames, true);
  } finally {
    closeSync(fd);
  }
  let live = true;
  return {
    bytes: new Uint8Array(buffer, 0, frames.length * PAGE_SIZE),
    mapped: true,
    unmap: () => {
      if (live) { live = false; nativeMem.unmap(buffer); }
    },
  };
}
