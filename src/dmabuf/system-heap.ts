/**
 * A local exporter: buffers of the domain's own RAM, allocated from the
 * guest page allocator like Linux's system dma-buf heap. This is what a VM's
 * user space exports with hyper_dmabuf.
 *
 * Frames are scrubbed when allocated and again when the last reference is
 * dropped (the allocator does both), so no data outlives the buffer.
 */
import type { DmaDirection } from '../../protocol/messages/dmabuf.ts';
import { PAGE_SIZE } from '../../protocol/limits.ts';
import type { GuestRam } from '../guest/guest-ram.ts';
import type { PageAllocator } from '../guest/page-allocator.ts';
import { DmaBuf, type Attachment, type DmaBufOps } from './dma-buf.ts';
import { geometryFor } from './geometry.ts';
import { viewFrames, type FramesView } from './ram-vmap.ts';
import { SgTable } from './sg-table.ts';

/** What the heap needs of a guest kernel. */
export interface SystemHeapHost {
  readonly domid: number;
  readonly ram: GuestRam;
  readonly allocator: PageAllocator;
}

/** Exporter-private data of a system-heap buffer. */
export interface SystemHeapPriv {
  /** Owning domain. */
  readonly dom: number;
  /** Frames, in buffer order. */
  readonly frames: Uint32Array;
  /** The vmap in use, if any. */
  vmapping: FramesView | undefined;
  /** True once the frames went back to the allocator. */
  freed: boolean;
}

/** Options of one allocation. */
export interface SystemHeapAllocOptions {
  /** Pages no two of which are adjacent (worst case for mapping). */
  scattered?: boolean;
  /** Data starts this many bytes into the first page (default 0). */
  firstOffset?: number;
  /** Name, for messages. */
  name?: string;
}

/** Counters of one heap. */
export interface SystemHeapStats {
  allocated: number;
  released: number;
  live: number;
}

/** The system heap of one domain. */
export class SystemHeap {
  private readonly host: SystemHeapHost;
  private readonly counters = { allocated: 0, released: 0 };
  private readonly ops: DmaBufOps;

  constructor(host: SystemHeapHost) {
    this.host = host;
    this.ops = makeOps(host, this.counters);
  }

  /** Allocates a scrubbed buffer of `size` bytes. */
  alloc(size: number, options: SystemHeapAllocOptions = {}): DmaBuf<SystemHeapPriv> {
    const geometry = geometryFor(size, options.firstOffset ?? 0);
    const frames = this.host.allocator.alloc(geometry.nents, options.scattered ? { scattered: true } : {});
    this.counters.allocated++;
    return new DmaBuf<SystemHeapPriv>({
      ops: this.ops, geometry, priv: { dom: this.host.domid, frames, vmapping: undefined, freed: false },
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

function makeOps(host: SystemHeapHost, counters: { released: number }): DmaBufOps {
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
      p.vmapping = viewFrames(host.ram, p.frames);
      return p.vmapping.bytes.subarray(buf.geometry.firstOffset, buf.geometry.firstOffset + buf.size);
    },
    vunmap(buf: DmaBuf): void {
      const p = priv(buf);
      p.vmapping?.unmap();
      p.vmapping = undefined;
    },
    kmap(buf: DmaBuf, page: number): Uint8Array {
      return host.ram.pages(priv(buf).frames[page]!, 1).subarray(0, PAGE_SIZE);
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
