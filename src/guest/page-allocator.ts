/**
 * The guest's page-frame allocator: a binary buddy allocator over the
 * domain's RAM, with every page scrubbed (zeroed) when it is handed out and
 * when it comes back, so no stale data ever reaches a peer domain.
 *
 * Buffers are served like Linux's system dma-buf heap
 * (drivers/dma-buf/heaps/system_heap.c, orders {8, 4, 0}): as many 256-page
 * (1 MiB) chunks as fit, then 16-page (64 KiB) chunks, then single pages, each
 * order falling back to the next when none is free. A typical buffer is thus
 * a few contiguous runs, which the foreign mapper maps with one mmap each.
 * `{ scattered: true }` instead returns pages no two of which are adjacent in
 * memory: the worst case, for tests and benchmarks.
 *
 * All state is in typed arrays indexed by frame (free lists are intrusive
 * doubly linked lists), so 65,536 or 4 million pages cost a few bytes each and
 * every operation is O(log) per chunk.
 */
import { GuestError } from './errors.ts';
import { forEachRun } from './frame-runs.ts';

/** Largest buddy order: 2^8 pages = 1 MiB. */
export const MAX_ORDER = 8;
/** Chunk orders tried for a buffer, largest first (the system heap's orders). */
export const HEAP_ORDERS: readonly number[] = [8, 4, 0];

/** Where the allocator's frames live; it zeroes them through this. */
export interface ScrubTarget {
  /** Zeroes `count` pages starting at frame `first`. */
  scrub(first: number, count: number): void;
}

/** Options of an allocator. */
export interface PageAllocatorOptions {
  /** Frames [0, reserved) are never handed out (frame 0 by default, as in a real guest). */
  reserved?: number;
}

/** Options of one allocation. */
export interface AllocOptions {
  /** Pages no two of which are adjacent in memory (worst case for mapping). */
  scattered?: boolean;
}

/** Per-frame state, one byte per frame. */
const FrameState = {
  Free: 0,
  Allocated: 1,
  Reserved: 2,
} as const;

const NO_FRAME = -1;

/** A buddy allocator of the frames of one domain's RAM. */
export class PageAllocator {
  /** Total frames in RAM. */
  readonly memPages: number;
  /** Frames [0, reserved) are never handed out. */
  readonly reserved: number;
  private readonly target: ScrubTarget;
  private readonly state: Uint8Array;
  /** Order of the free block starting at a frame, or -1 if no free block starts there. */
  private readonly headOrder: Int8Array;
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  /** Head of the free list of each order. */
  private readonly lists = new Int32Array(MAX_ORDER + 1).fill(NO_FRAME);
  private nFree = 0;

  constructor(memPages: number, target: ScrubTarget, options: PageAllocatorOptions = {}) {
    if (!Number.isInteger(memPages) || memPages < 1 || memPages > 0xffffffff) throw new RangeError(`memPages ${memPages} out of range`);
    const reserved = options.reserved ?? 1;
    if (!Number.isInteger(reserved) || reserved < 0 || reserved > memPages) throw new RangeError(`reserved ${reserved} out of range`);
    this.memPages = memPages;
    this.reserved = reserved;
    this.target = target;
    this.state = new Uint8Array(memPages);
    this.headOrder = new Int8Array(memPages).fill(-1);
    this.next = new Int32Array(memPages);
    this.prev = new Int32Array(memPages);
    this.state.fill(FrameState.Reserved, 0, reserved);
    // Seed the free lists greedily with the largest aligned blocks that fit,
    // pushed highest first so that blocks come off the lists in ascending
    // address order: successive chunks of a fresh buffer are then adjacent
    // and merge into long runs (fewer mmaps for an importer).
    const blocks: Array<[number, number]> = [];
    let f = reserved;
    while (f < memPages) {
      let k = MAX_ORDER;
      while (k > 0 && (f % (1 << k) !== 0 || f + (1 << k) > memPages)) k--;
      blocks.push([f, k]);
      f += 1 << k;
    }
    for (let i = blocks.length - 1; i >= 0; i--) {
      const [first, k] = blocks[i]!;
      this.push(first, k);
      this.nFree += 1 << k;
    }
  }

  /** Frames free now. */
  get freePages(): number {
    return this.nFree;
  }

  /** Frames handed out and not yet freed. */
  get usedPages(): number {
    return this.memPages - this.reserved - this.nFree;
  }

  /** True if `frame` is currently allocated. */
  isAllocated(frame: number): boolean {
    return this.state[frame] === FrameState.Allocated;
  }

  /** Free blocks per order, for statistics and fragmentation tests. */
  freeBlocksByOrder(): number[] {
    const out: number[] = [];
    for (let k = 0; k <= MAX_ORDER; k++) {
      let n = 0;
      for (let f = this.lists[k]!; f !== NO_FRAME; f = this.next[f]!) n++;
      out.push(n);
    }
    return out;
  }

  /**
   * Allocates `nPages` scrubbed frames and returns their numbers in buffer
   * order. Throws GuestError ERR_NO_MEMORY (and allocates nothing) when the
   * request cannot be met.
   */
  alloc(nPages: number, options: AllocOptions = {}): Uint32Array {
    if (!Number.isInteger(nPages) || nPages < 1) throw new GuestError('ERR_BAD_ARGUMENT', `page count ${nPages} must be a positive integer`);
    if (nPages > this.nFree) {
      throw new GuestError('ERR_NO_MEMORY', `cannot allocate ${nPages} pages: ${this.nFree} of ${this.memPages} free`,
        { wanted: nPages, free: this.nFree, memPages: this.memPages });
    }
    const frames = options.scattered ? this.allocScattered(nPages) : this.allocChunked(nPages);
    forEachRun(frames, (first, count) => this.target.scrub(first, count));
    return frames;
  }

  /**
   * Returns frames to the allocator, scrubbing them first. The whole call
   * fails (and frees nothing) if any frame is not currently allocated or is
   * listed twice.
   */
  free(frames: ArrayLike<number>): void {
    let i = 0;
    try {
      for (; i < frames.length; i++) {
        const f = frames[i]!;
        if (!Number.isInteger(f) || f < 0 || f >= this.memPages || this.state[f] !== FrameState.Allocated) {
          throw new GuestError('ERR_BAD_ARGUMENT', `cannot free frame ${f}: ${this.describeFrame(f)}`, { frame: f });
        }
        // Mark as we go, so a duplicate later in the list is caught.
        this.state[f] = FrameState.Free;
      }
    } catch (e) {
      for (let j = 0; j < i; j++) this.state[frames[j]!] = FrameState.Allocated;
      throw e;
    }
    forEachRun(frames, (first, count) => this.target.scrub(first, count));
    for (let j = 0; j < frames.length; j++) this.release(frames[j]!);
  }

  private describeFrame(f: number): string {
    if (!Number.isInteger(f) || f < 0 || f >= this.memPages) return `outside RAM of ${this.memPages} pages`;
    if (this.state[f] === FrameState.Reserved) return 'reserved';
    return 'not allocated (double free?)';
  }

  /** Heap order: 1 MiB chunks, then 64 KiB, then pages, each order falling back to the next. */
  private allocChunked(nPages: number): Uint32Array {
    const out = new Uint32Array(nPages);
    let pos = 0;
    for (const order of HEAP_ORDERS) {
      const size = 1 << order;
      while (nPages - pos >= size) {
        const f = this.allocBlock(order);
        if (f === NO_FRAME) break;
        for (let i = 0; i < size; i++) out[pos++] = f + i;
      }
    }
    // nPages <= nFree was checked, and order 0 takes any free page.
    if (pos !== nPages) throw new Error(`allocator invariant broken: ${pos} of ${nPages} pages with ${this.nFree} free`);
    return out;
  }

  /**
   * Pages no two of which are adjacent. Takes aligned pairs and keeps the
   * even page, returning the odd one (so every chosen frame is even); when
   * no pair is left, falls back to single pages whose neighbours were not
   * chosen. All-or-nothing.
   */
  private allocScattered(nPages: number): Uint32Array {
    const out = new Uint32Array(nPages);
    let pos = 0;
    while (pos < nPages) {
      const f = this.allocBlock(1);
      if (f === NO_FRAME) break;
      out[pos++] = f;
      this.state[f + 1] = FrameState.Free;
      this.release(f + 1);
    }
    if (pos < nPages) {
      const chosen = new Uint8Array(this.memPages);
      for (let i = 0; i < pos; i++) chosen[out[i]!] = 1;
      const setAside: number[] = [];
      while (pos < nPages) {
        const f = this.allocBlock(0);
        if (f === NO_FRAME) break;
        if ((f > 0 && chosen[f - 1]) || (f + 1 < this.memPages && chosen[f + 1])) {
          setAside.push(f);
          continue;
        }
        chosen[f] = 1;
        out[pos++] = f;
      }
      // Set-aside pages were never handed out: back without scrubbing.
      for (const f of setAside) { this.state[f] = FrameState.Free; this.release(f); }
      if (pos < nPages) {
        for (let i = 0; i < pos; i++) { this.state[out[i]!] = FrameState.Free; this.release(out[i]!); }
        throw new GuestError('ERR_NO_MEMORY', `cannot find ${nPages} non-adjacent free pages (${this.nFree} free of ${this.memPages})`,
          { wanted: nPages, free: this.nFree, memPages: this.memPages, scattered: true });
      }
    }
    return out;
  }

  /** Takes a free block of exactly `order`, splitting a larger one if needed; NO_FRAME if none. */
  private allocBlock(order: number): number {
    let j = order;
    while (j <= MAX_ORDER && this.lists[j] === NO_FRAME) j++;
    if (j > MAX_ORDER) return NO_FRAME;
    const f = this.lists[j]!;
    this.remove(f);
    while (j > order) {
      j--;
      this.push(f + (1 << j), j);
    }
    this.state.fill(FrameState.Allocated, f, f + (1 << order));
    this.nFree -= 1 << order;
    return f;
  }

  /** Puts one page (already marked Free) back, merging with free buddies. */
  private release(frame: number): void {
    let f = frame;
    let k = 0;
    while (k < MAX_ORDER) {
      const buddy = f ^ (1 << k);
      if (buddy >= this.memPages || this.headOrder[buddy] !== k) break;
      this.remove(buddy);
      f = Math.min(f, buddy);
      k++;
    }
    this.push(f, k);
    this.nFree++;
  }

  private push(f: number, k: number): void {
    const head = this.lists[k]!;
    this.headOrder[f] = k;
    this.prev[f] = NO_FRAME;
    this.next[f] = head;
    if (head !== NO_FRAME) this.prev[head] = f;
    this.lists[k] = f;
  }

  private remove(f: number): void {
    const k = this.headOrder[f]!;
    const p = this.prev[f]!;
    const n = this.next[f]!;
    if (p !== NO_FRAME) this.next[p] = n;
    else this.lists[k] = n;
    if (n !== NO_FRAME) this.prev[n] = p;
    this.headOrder[f] = -1;
  }
}
