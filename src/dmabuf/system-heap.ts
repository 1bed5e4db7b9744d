/**
 * A local exporter: buffers of the domain's own RAM, allocated from the
 * guest page allocator like Linux's system dma-buf heap. This is what a VM's
 * user space exports with hyper_dmabuf.
 *
 * Frames are scrubbed when allocated and again when the last reference is
 * dropped (the allocator does both), so no data outlives the buffer.
 *
 * A buffer allocated `movable` is a dynamic exporter's buffer (move.ts): its
 * pages can move to newly allocated frames (relocation.ts). Its CPU views
 * are then always mappings of their own (never a plain window on RAM), so
 * that a move can detach them; a fixed buffer keeps the cheaper window and
 * cannot move.
 */
import type { DmaDirection } from '../../protocol/messages/dmabuf.ts';
import { PAGE_SIZE } from '../../protocol/limits.ts';
import type { GuestRam } from '../guest/guest-ram.ts';
import type { PageAllocator } from '../guest/page-allocator.ts';
import { DmaBuf, type Attachment, type DmaBufOps } from './dma-buf.ts';
import { geometryFor } from './geometry.ts';
import { viewFrames, type FramesView } from './ram-vmap.ts';
import { relocateFrames } from './relocation.ts';
import type { SystemHeapPriv } from './system-heap-priv.ts';
import { SgTable } from './sg-table.ts';

/** What the heap needs of a guest kernel. */
export interface SystemHeapHost {
  readonly domid: number;
  readonly ram: GuestRam;
  readonly allocator: PageAllocator;
}

export type { SystemHeapPriv } from './system-heap-priv.ts';

/** Options of one allocation. */
export interface SystemHeapAllocOptions {
  /** Pages no two of which are adjacent (worst case for mapping). */
  scattered?: boolean;
  /** Data starts this many bytes into the first page (default 0). */
  firstOffset?: number;
  /** Name, for messages. */
  name?: string;
  /** The pages may be moved later (DmaBuf.move); CPU views are then detachable mappings (default false). */
  movable?: boolean;
}

/** Counters of one heap. */
export interface SystemHeapStats {
  allocated: number;
  released: number;
  live: number;
  /** Moves committed (data copied to new frames). */
  moves: number;
  /** Old locations still allocated because a peer may still use them. */
  retiring: number;
}

/** Mutable counters shared with the ops. */
interface HeapCounters {
  allocated: number;
  released: number;
  moves: number;
  retiring: number;
}

/** The system heap of one domain. */
export class SystemHeap {
  private readonly host: SystemHeapHost;
  private readonly counters: HeapCounters = { allocated: 0, released: 0, moves: 0, retiring: 0 };
  private readonly ops: DmaBufOps;
  private readonly movableOps: DmaBufOps;

  constructor(host: SystemHeapHost) {
    this.host = host;
    this.ops = makeOps(host, this.counters);
    this.movableOps = {
      ...this.ops,
      relocate: (buf) => relocateFrames(host, buf as DmaBuf<SystemHeapPriv>, this.counters),
    };
  }

  /** Allocates a scrubbed buffer of `size` bytes. */
  alloc(size: number, options: SystemHeapAllocOptions = {}): DmaBuf<SystemHeapPriv> {
    const geometry = geometryFor(size, options.firstOffset ?? 0);
    const scattered = options.scattered ?? false;
    const movable = options.movable ?? false;
    const frames = this.host.allocator.alloc(geometry.nents, scattered ? { scattered: true } : {});
    this.counters.allocated++;
    return new DmaBuf<SystemHeapPriv>({
      ops: movable ? this.movableOps : this.ops, geometry,
      priv: { dom: this.host.domid, frames, movable, scattered, vmapping: undefined, kmappings: new Map(), freed: false },
      ...(options.name !== undefined ? { name: options.name } : {}),
    });
  }

  /** Counters. */
  stats(): SystemHeapStats {
    return { ...this.counters, live: this.counters.allocated - this.counters.released };
  }
}

/** True if `buf` was allocated by a system heap. */
export function isSystemHeapBuffer(buf: DmaBuf): buf is DmaBuf<SystemHeapPriv> {
  return buf.ops.exporter === 'system-heap';
}

function makeOps(host: SystemHeapHost, counters: HeapCounters): DmaBufOps {
  const priv = (buf: DmaBuf): SystemHeapPriv => buf.priv as SystemHeapPriv;
  return {
    exporter: 'system-heap',
    mapAttachment(att: Attachment, _dir: DmaDirection): SgTable {
      const p = priv(att.buf);
      return new SgTable(p.dom, p.frames, att.buf.geometry.firstOffset, att.buf.geometry.lastLength);
    },
    unmapAttachment(): void {
      // Nothing to tear down: the table is a description, and no IOMMU is modelled.
    },
    vmap(buf: DmaBuf): Uint8Array {
      const p = priv(buf);
      // A refresh after a move finds the old view already detached by the move.
      p.vmapping?.unmap();
      p.vmapping = viewFrames(host.ram, p.frames, p.movable);
      return p.vmapping.bytes.subarray(buf.geometry.firstOffset, buf.geometry.firstOffset + buf.size);
    },
    vunmap(buf: DmaBuf): void {
      const p = priv(buf);
      p.vmapping?.unmap();
      p.vmapping = undefined;
    },
    kmap(buf: DmaBuf, page: number): Uint8Array {
      const p = priv(buf);
      if (!p.movable) return host.ram.pages(p.frames[page]!, 1).subarray(0, PAGE_SIZE);
      const m = viewFrames(host.ram, p.frames.subarray(page, page + 1), true);
      p.kmappings.set(m.bytes, m);
      return m.bytes;
    },
    kunmap(buf: DmaBuf, _page: number, view: Uint8Array): void {
      const p = priv(buf);
      p.kmappings.get(view)?.unmap();
      p.kmappings.delete(view);
    },
    release(buf: DmaBuf): void {
      const p = priv(buf);
      // The allocator scrubs the frames before they can be handed out again.
      host.allocator.free(p.frames);
      p.freed = true;
      counters.released++;
    },
  };
}
