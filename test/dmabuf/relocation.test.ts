/**
 * A relocation's steps go through RelocationMachine (protocol/machines/relocation.ts,
 * SPEC.md 11.8.2): commit then retire, or abort; a step out of order is
 * refused with IllegalTransitionError before it touches a frame, and a
 * commit whose copy fails leaves the relocation prepared so it can abort.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IllegalTransitionError } from '../../protocol/state-machine.ts';
import type { DmaBuf } from '../../src/dmabuf/dma-buf.ts';
import { relocateFrames, type RelocationCounters } from '../../src/dmabuf/relocation.ts';
import type { SystemHeapPriv } from '../../src/dmabuf/system-heap-priv.ts';
import { openHeapFixture, type HeapFixture } from './heap-fixture.ts';

const PAGES = 4;
let fixture: HeapFixture;
let buf: DmaBuf<SystemHeapPriv>;
let counters: RelocationCounters;

beforeEach(() => {
  fixture = openHeapFixture('relocation', 256);
  buf = fixture.heap.alloc(PAGES * 4096, { movable: true });
  counters = { moves: 0, retiring: 0 };
});

afterEach(async () => {
  await buf.put();
  fixture.close();
});

describe('relocation steps (RelocationMachine)', () => {
  it('commit then retire; every other order is refused before any frame moves', () => {
    const free0 = fixture.allocator.freePages;
    const reloc = relocateFrames(fixture, buf, counters);
    expect(fixture.allocator.freePages).toBe(free0 - PAGES);
    expect(() => reloc.retire()).toThrow(IllegalTransitionError);
    const before = Array.from(buf.priv.frames);
    reloc.commit();
    expect(Array.from(buf.priv.frames)).toEqual(Array.from(reloc.to.frames()));
    expect(Array.from(buf.priv.frames)).not.toEqual(before);
    expect(() => reloc.commit()).toThrow(IllegalTransitionError);
    expect(() => reloc.abort()).toThrow(IllegalTransitionError);
    expect(counters).toEqual({ moves: 1, retiring: 1 });
    reloc.retire();
    expect(counters).toEqual({ moves: 1, retiring: 0 });
    expect(fixture.allocator.freePages).toBe(free0);
    expect(() => reloc.retire()).toThrow(IllegalTransitionError);
  });

  it('abort frees the new frames; nothing follows it', () => {
    const free0 = fixture.allocator.freePages;
    const before = Array.from(buf.priv.frames);
    const reloc = relocateFrames(fixture, buf, counters);
    reloc.abort();
    expect(fixture.allocator.freePages).toBe(free0);
    expect(Array.from(buf.priv.frames)).toEqual(before);
    for (const step of [() => reloc.commit(), () => reloc.abort(), () => reloc.retire()]) expect(step).toThrow(IllegalTransitionError);
    expect(counters).toEqual({ moves: 0, retiring: 0 });
  });

  it('a commit whose copy fails stays prepared: the move can still abort it', () => {
    const free0 = fixture.allocator.freePages;
    const reloc = relocateFrames({ ...fixture, ram: { pages: () => { throw new Error('copy failed'); } } as never }, buf, counters);
    expect(() => reloc.commit()).toThrow('copy failed');
    reloc.abort();
    expect(fixture.allocator.freePages).toBe(free0);
  });
});
