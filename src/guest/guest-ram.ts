/**
 * A domain's own RAM: the shared-memory file the backend created for it,
 * mapped whole and read-write into this process. A guest frame number is a
 * page index in that file.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { PAGE_SIZE } from '../../protocol/limits.ts';
import { nativeMem } from '../memory/native.ts';
import { GuestError } from './errors.ts';
import type { ValueOf } from '../../protocol/state-machine.ts';
import type { ScrubTarget } from './page-allocator.ts';

/** Lifecycle of the mapping. */
export const GuestRamState = {
  Mapped: 'mapped',
  Unmapped: 'unmapped',
} as const;
/** One of the GuestRamState states. */
export type GuestRamState = ValueOf<typeof GuestRamState>;

/** The whole guest RAM, mapped read-write. */
export class GuestRam implements ScrubTarget {
  /** Path of the RAM file. */
  readonly path: string;
  /** Size in pages. */
  readonly memPages: number;
  private buffer: ArrayBuffer;
  private bytesView: Uint8Array;
  private stateValue: GuestRamState = GuestRamState.Mapped;

  private constructor(path: string, memPages: number, buffer: ArrayBuffer) {
    this.path = path;
    this.memPages = memPages;
    this.buffer = buffer;
    this.bytesView = new Uint8Array(buffer);
  }

  /**
   * Opens and maps the RAM file. `memPages`, when given, must match the file
   * size (a mismatch means the domain was launched with the wrong file).
   */
  static open(path: string, memPages?: number): GuestRam {
    const fd = openSync(path, 'r+');
    try {
      const size = fstatSync(fd).size;
      if (size === 0 || size % PAGE_SIZE !== 0) throw new GuestError('ERR_BAD_ARGUMENT', `RAM file ${path} is ${size} bytes, not a whole number of pages`);
      const pages = size / PAGE_SIZE;
      if (memPages !== undefined && memPages !== pages) {
        throw new GuestError('ERR_BAD_ARGUMENT', `RAM file ${path} holds ${pages} pages, expected ${memPages}`);
      }
      // The mapping keeps the file referenced; the descriptor is not needed after mmap.
      return new GuestRam(path, pages, nativeMem.mapRange(fd, 0, pages, true));
    } finally {
      closeSync(fd);
    }
  }

  /** Current state. */
  get state(): GuestRamState {
    return this.stateValue;
  }

  /** All of RAM as bytes (empty after close). */
  get bytes(): Uint8Array {
    return this.bytesView;
  }

  /** Bytes of `count` pages from frame `first` (a view, not a copy). */
  pages(first: number, count = 1): Uint8Array {
    this.checkRange(first, count);
    return this.bytesView.subarray(first * PAGE_SIZE, (first + count) * PAGE_SIZE);
  }

  /** Bytes of one page (a view, not a copy). */
  page(frame: number): Uint8Array {
    return this.pages(frame, 1);
  }

  /** Zeroes `count` pages from frame `first`. */
  scrub(first: number, count: number): void {
    this.pages(first, count).fill(0);
  }

  /** Unmaps RAM; every view obtained from it is detached. Idempotent. */
  close(): void {
    if (this.stateValue === GuestRamState.Unmapped) return;
    this.stateValue = GuestRamState.Unmapped;
    nativeMem.unmap(this.buffer);
    this.buffer = new ArrayBuffer(0);
    this.bytesView = new Uint8Array(0);
  }

  private checkRange(first: number, count: number): void {
    if (this.stateValue !== GuestRamState.Mapped) throw new GuestError('ERR_STATE', `RAM ${this.path} is unmapped`);
    if (!Number.isInteger(first) || !Number.isInteger(count) || first < 0 || count < 0 || first + count > this.memPages) {
      throw new GuestError('ERR_BAD_ARGUMENT', `frames [${first}, ${first + count}) outside RAM of ${this.memPages} pages`);
    }
  }
}
