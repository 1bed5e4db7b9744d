/**
 * The system heap's half of a move (move.ts): new frames for a movable
 * buffer, the copy, and the release of the old frames.
 *
 * The new frames come scrubbed from the allocator (nothing of a previous
 * owner shows through), in the buffer's placement style (scattered stays
 * scattered). Commit copies page by page through the RAM mapping, switches
 * the buffer to the new frames, and detaches every CPU view of the old ones
 * (the vmap and kmap mappings), so no holder can read or write a page that
 * is about to be scrubbed and reused. The old frames are scrubbed and freed
 * only at retire, which move.ts calls once no importer uses them.
 */
import type { GuestRam } from '../guest/guest-ram.ts';
import type { PageAllocator } from '../guest/page-allocator.ts';
import type { DmaBuf } from './dma-buf.ts';
import type { Relocation } from './move.ts';
import { SgTable } from './sg-table.ts';
import type { SystemHeapPriv } from './system-heap-priv.ts';
import { RelocationMachine, type RelocationEvent } from '../../protocol/machines/relocation.ts';
import { IllegalTransitionError } from '../../protocol/state-machine.ts';

/** What a relocation needs of the guest kernel. */
export interface RelocationHost {
  readonly ram: GuestRam;
  readonly allocator: PageAllocator;
}

/** Counters the heap keeps about moves. */
export interface RelocationCounters {
  moves: number;
  retiring: number;
}

/** Allocates new frames for `buf` and returns the steps of its move. Throws ERR_NO_MEMORY (nothing allocated) if RAM is short. */
export function relocateFrames(host: RelocationHost, buf: DmaBuf<SystemHeapPriv>, counters: RelocationCounters): Relocation {
  const p = buf.priv;
  const to = host.allocator.alloc(p.frames.length, p.scattered ? { scattered: true } : {});
  // prepared -> committed -> retired, or prepared -> aborted (RelocationMachine). A step out of order is
  // refused before its work; the transition is taken once the work is done, so a commit that fails
  // (the copy threw) leaves the relocation prepared and the move can still abort it.
  const lifecycle = RelocationMachine.start();
  const refuseOutOfOrder = (event: RelocationEvent): void => {
    if (!lifecycle.allows(event)) throw new IllegalTransitionError(RelocationMachine.decl.id, lifecycle.state, event);
  };
  let old: Uint32Array | undefined;
  return {
    to: new SgTable(p.dom, to, buf.geometry.firstOffset, buf.geometry.lastLength),
    commit(): void {
      refuseOutOfOrder('commit');
      copyFrames(host.ram, p.frames, to);
      old = p.frames;
      p.frames = to;
      // Views of the old frames die now; holders fetch new ones (DmaBuf.vmap after a move).
      p.vmapping?.unmap();
      p.vmapping = undefined;
      for (const m of p.kmappings.values()) m.unmap();
      p.kmappings.clear();
      lifecycle.apply('commit');
      counters.moves++;
      counters.retiring++;
    },
    abort(): void {
      refuseOutOfOrder('abort');
      host.allocator.free(to);
      lifecycle.apply('abort');
    },
    retire(): void {
      refuseOutOfOrder('retire');
      // The allocator scrubs them before they can be handed out again.
      host.allocator.free(old!);
      old = undefined;
      lifecycle.apply('retire');
      counters.retiring--;
    },
  };
}

/** Copies every page of `from` to the page at the same index of `to` (runs of adjacent pages in one go). */
export function copyFrames(ram: GuestRam, from: Uint32Array, to: Uint32Array): void {
  let i = 0;
  while (i < from.length) {
    let n = 1;
    while (i + n < from.length && from[i + n] === from[i]! + n && to[i + n] === to[i]! + n) n++;
    ram.pages(to[i]!, n).set(ram.pages(from[i]!, n));
    i += n;
  }
}
