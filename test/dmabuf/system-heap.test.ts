/**
 * The system heap over a real guest-RAM file (no backend needed): scrubbed
 * allocation, a contiguous view of scattered pages with no copy, and
 * scrub-and-free at the last put.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SystemHeap } from '../../src/dmabuf/system-heap.ts';
import type { GuestRam } from '../../src/guest/guest-ram.ts';
import { noTwoAdjacent } from '../../src/guest/frame-runs.ts';
import type { PageAllocator } from '../../src/guest/page-allocator.ts';
import { nativeMem } from '../../src/memory/native.ts';
import { openHeapFixture, type HeapFixture } from './heap-fixture.ts';

const MEM_PAGES = 4096;
let fixture: HeapFixture;
let ram: GuestRam;
let heap: SystemHeap;
let allocator: PageAllocator;

beforeEach(() => {
  fixture = openHeapFixture('heap', MEM_PAGES);
  ({ ram, allocator, heap } = fixture);
});

afterEach(() => {
  fixture.close();
});

describe('SystemHeap', () => {
  it('gives a scattered buffer one contiguous view over its own pages (no copy), offset applied', async () => {
    const buf = heap.alloc(3 * 4096, { scattered: true, firstOffset: 100 });
    expect(buf.geometry).toEqual({ nents: 4, firstOffset: 100, lastLength: 100 });
    const frames = buf.priv.frames;
    expect(noTwoAdjacent(frames)).toBe(true);
    const liveBefore = nativeMem.liveMappings();
    const view = await buf.vmap();
    expect(nativeMem.liveMappings()).toBe(liveBefore + 1);
    expect(view.byteLength).toBe(3 * 4096);
    view[0] = 0xaa;
    view[view.byteLength - 1] = 0xbb;
    // The bytes are the RAM frames themselves.
    expect(ram.page(frames[0]!)[100]).toBe(0xaa);
    expect(ram.page(frames[3]!)[99]).toBe(0xbb);
    await buf.vunmap(view);
    expect(view.byteLength).toBe(0);
    expect(nativeMem.liveMappings()).toBe(liveBefore);
    await buf.put();
  });

  it('views a contiguous buffer as a slice of RAM without mapping anything', async () => {
    const buf = heap.alloc(8 * 4096);
    const live = nativeMem.liveMappings();
    const view = await buf.vmap();
    expect(nativeMem.liveMappings()).toBe(live);
    expect(view.byteLength).toBe(8 * 4096);
    await buf.vunmap(view);
    await buf.put();
  });

  it('maps an attachment to the frames and scrubs and frees them at the last put', async () => {
    const used = allocator.usedPages;
    const buf = heap.alloc(5000, { scattered: true });
    const att = await buf.attach('display');
    const sgt = await buf.map(att);
    expect(Array.from(sgt.frames())).toEqual(Array.from(buf.priv.frames));
    expect(sgt.dom).toBe(1);
    const k = await buf.kmap(1);
    k.fill(0x5c);
    await buf.kunmap(1, k);
    await buf.unmap(att, sgt);
    await buf.detach(att);
    const frames = Array.from(buf.priv.frames);
    await buf.put();
    expect(buf.priv.freed).toBe(true);
    expect(allocator.usedPages).toBe(used);
    for (const f of frames) {
      expect(allocator.isAllocated(f)).toBe(false);
      expect(ram.page(f).every((b) => b === 0)).toBe(true);
    }
    expect(heap.stats()).toEqual({ allocated: 1, released: 1, live: 0, moves: 0, retiring: 0 });
  });
});
