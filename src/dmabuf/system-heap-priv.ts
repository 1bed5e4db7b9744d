/**
 * The exporter-private data of a system-heap buffer, apart from
 * system-heap.ts so that relocation.ts (which system-heap.ts uses to move a
 * buffer) can read it without importing the heap: imports run one way.
 */
import type { FramesView } from './ram-vmap.ts';

/** Exporter-private data of a system-heap buffer. */
export interface SystemHeapPriv {
  /** Owning domain. */
  readonly dom: number;
  /** Frames, in buffer order (replaced by a move). */
  frames: Uint32Array;
  /** Whether the pages may move (allocated movable). */
  readonly movable: boolean;
  /** Allocated scattered (a move keeps the placement style). */
  readonly scattered: boolean;
  /** The vmap in use, if any. */
  vmapping: FramesView | undefined;
  /** kmap views of a movable buffer, each its own mapping, by view. */
  readonly kmappings: Map<Uint8Array, FramesView>;
  /** True once the frames went back to the allocator. */
  freed: boolean;
}
