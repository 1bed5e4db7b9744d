/**
 * A shared buffer's reservation object goes through ResvMachine
 * (protocol/machines/resv.ts, SPEC.md 11A.12): adds and snapshots while
 * live; the registry drops it when its buffer is released or the layer
 * unloads, and an add or snapshot after that is refused with
 * IllegalTransitionError, nothing changed.
 */
import { describe, expect, it } from 'vitest';
import { ResvState } from '../../protocol/machines/resv.ts';
import { IllegalTransitionError } from '../../protocol/state-machine.ts';
import { DmaBufState, type CpuAccessSync, type DmaBuf } from '../../src/dmabuf/dma-buf.ts';
import { DmaResvUsage } from '../../src/fence/dma-resv.ts';
import { SwSyncTimeline } from '../../src/fence/sw-sync.ts';
import { ResvRegistry } from '../../src/hyper-dmabuf/sync/resv-registry.ts';
import { SharedResv } from '../../src/hyper-dmabuf/sync/shared-resv.ts';

const DOMID = 1;

/** What the registry reads of a buffer: its state and its CPU-access hook. */
function fakeBuf(): { state: DmaBufState; cpuSync?: CpuAccessSync } {
  return { state: DmaBufState.Live };
}

const cpuSync: CpuAccessSync = { waitForCpuAccess: async () => {} };

describe('reservation object lifecycle (ResvMachine)', () => {
  it('adds and snapshots while live; once dropped both are refused and nothing changes', () => {
    const tl = new SwSyncTimeline('gpu');
    const resv = new SharedResv(DOMID);
    expect(resv.lifecycle.state).toBe(ResvState.Live);
    expect(resv.add([tl.createPoint(1)], DmaResvUsage.WRITE, DOMID)).toEqual({ replaced: 0, appended: 1 });
    expect(resv.pending(DmaResvUsage.READ)).toHaveLength(1);
    expect(resv.lifecycle.state).toBe(ResvState.Live);

    resv.drop();
    expect(resv.lifecycle.state).toBe(ResvState.Gone);
    expect(() => resv.add([tl.createPoint(2)], DmaResvUsage.WRITE, DOMID)).toThrow(IllegalTransitionError);
    expect(() => resv.pending(DmaResvUsage.READ)).toThrow(IllegalTransitionError);
    expect(() => resv.drop()).toThrow(IllegalTransitionError);
    expect(resv.lifecycle.state).toBe(ResvState.Gone);
    expect(resv.resv.numFences).toBe(1);
    expect(resv.counters).toMatchObject({ localAdds: 1, appended: 1 });
    tl.close();
  });

  it('the registry drops the reservation object of a released buffer, and every one when the layer unloads', () => {
    const tl = new SwSyncTimeline('gpu');
    const registry = new ResvRegistry(DOMID, cpuSync);
    const a = fakeBuf();
    const b = fakeBuf();
    const ra = registry.for(a as unknown as DmaBuf);
    const rb = registry.for(b as unknown as DmaBuf);
    ra.add([tl.createPoint(1)], DmaResvUsage.READ, DOMID);
    expect(a.cpuSync).toBe(cpuSync);

    a.state = DmaBufState.Released;
    expect(ra.lifecycle.state).toBe(ResvState.Live);
    expect(registry.stats()).toMatchObject({ buffers: 1, localAdds: 1 });
    expect(ra.lifecycle.state).toBe(ResvState.Gone);
    expect(registry.get(a as unknown as DmaBuf)).toBeUndefined();
    expect(rb.lifecycle.state).toBe(ResvState.Live);

    registry.detachAll();
    expect(rb.lifecycle.state).toBe(ResvState.Gone);
    expect(b.cpuSync).toBeUndefined();
    expect(registry.get(b as unknown as DmaBuf)).toBeUndefined();
    tl.close();
  });
});
