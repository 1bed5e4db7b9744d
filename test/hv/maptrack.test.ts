/** Unit tests of the maptrack (handles, generations, free list, limit) and the port table. */
import { describe, expect, it } from 'vitest';
import { INVALID_GRANT_HANDLE } from '../../protocol/index.ts';
import { EventChannels, MAX_PORT, PortState } from '../../src/hv/event-channels.ts';
import { Maptrack } from '../../src/hv/maptrack.ts';

describe('Maptrack', () => {
  it('issues distinct handles, never 0 or INVALID_GRANT_HANDLE, and records each mapping', () => {
    const mt = new Maptrack(5000);
    const handles = Array.from({ length: 5000 }, (_, i) => mt.alloc(3, i + 1, i % 2 === 0));
    expect(new Set(handles).size).toBe(5000);
    expect(handles).not.toContain(0);
    expect(handles).not.toContain(INVALID_GRANT_HANDLE);
    expect(mt.full).toBe(true);
    const slot = mt.lookup(handles[41]!);
    expect(slot).toBeGreaterThanOrEqual(0);
    expect([mt.granterOf(slot), mt.refOf(slot), mt.isWritable(slot)]).toEqual([3, 42, false]);
  });

  it('makes a released handle stale even after its slot is reused', () => {
    const mt = new Maptrack(4);
    const h = mt.alloc(1, 1, true);
    mt.free(mt.lookup(h));
    expect(mt.lookup(h)).toBe(-1);
    const h2 = mt.alloc(1, 2, true);
    expect(h2).not.toBe(h);
    expect(mt.lookup(h2)).toBeGreaterThanOrEqual(0);
    expect(mt.lookup(h)).toBe(-1);
    expect(mt.live).toBe(1);
  });

  it('refuses handles never issued', () => {
    const mt = new Maptrack(8);
    mt.alloc(1, 1, false);
    for (const h of [0, 1, 2, 7, 0x100001, INVALID_GRANT_HANDLE, 0xfff00000]) expect(mt.lookup(h)).toBe(-1);
  });

  it('lists live slots as a snapshot that may be freed while iterating', () => {
    const mt = new Maptrack(16);
    const hs = [1, 2, 3, 4].map((r) => mt.alloc(1, r, false));
    mt.free(mt.lookup(hs[1]!));
    const live = mt.liveSlots();
    expect(live.length).toBe(3);
    for (const s of live) mt.free(s);
    expect(mt.live).toBe(0);
  });
});

describe('EventChannels', () => {
  it('allocates the lowest closed port and reuses freed ones', () => {
    const ch = new EventChannels();
    expect([1, 2, 3].map(() => ch.alloc(PortState.Unbound, 5, 0))).toEqual([1, 2, 3]);
    ch.free(2);
    expect(ch.alloc(PortState.Unbound, 5, 0)).toBe(2);
    expect(ch.alloc(PortState.Unbound, 5, 0)).toBe(4);
    const rest = Array.from({ length: MAX_PORT - 4 }, () => ch.alloc(PortState.Unbound, 5, 0));
    expect(rest[0]).toBe(5);
    expect(rest.at(-1)).toBe(MAX_PORT);
    expect(new Set(rest).size).toBe(MAX_PORT - 4);
    // All 4095 open: the next allocation fails (EVTCHN_ALLOC_UNBOUND turns 0 into ERR_LIMIT).
    expect(ch.alloc(PortState.Unbound, 5, 0)).toBe(0);
    ch.free(77);
    expect(ch.alloc(PortState.Unbound, 5, 0)).toBe(77);
    expect(ch.open).toBe(MAX_PORT);
  });
});
