/**
 * The map path at framebuffer scale: a 4K framebuffer is ~8,100 pages, and
 * one batch maps (and one unmaps) them all, again and again, with nothing
 * left behind. How fast is a figure of the benchmarks (vm-sim/bench, the map
 * round trip), never asserted here: a timed bound fails on a loaded machine
 * and proves nothing on a quiet one.
 */
import { describe, expect, it } from 'vitest';
import { GNTMAP, GNTST } from '../../protocol/index.ts';
import { GNTTAB_SETUP_TABLE } from '../../protocol/messages/grant.ts';
import { mapRefs, publishRange, startBackend, startGuest, unmapHandles } from './helpers.ts';

const FRAMEBUFFER_PAGES = Math.ceil((3840 * 2160 * 4) / 4096); // 8,100

describe('map batch at framebuffer scale', () => {
  it(`maps and unmaps ${FRAMEBUFFER_PAGES} refs per round trip, 30 times, leaving nothing`, async () => {
    const hv = await startBackend();
    const a = await startGuest(hv, { memPages: 16384 });
    const b = await startGuest(hv);
    await a.client.call(GNTTAB_SETUP_TABLE, { nrFrames: 64 });
    const refs = publishRange(a.table, 1, FRAMEBUFFER_PAGES, b.domid, false);
    for (let i = 0; i < 30; i++) {
      const m = await mapRefs(b.client, { dom: a.domid, flags: GNTMAP.host_map, refs });
      expect(m.status.every((s) => s === GNTST.okay)).toBe(true);
      const u = await unmapHandles(b.client, { handles: m.handle });
      expect(u.status.every((s) => s === GNTST.okay)).toBe(true);
    }
    expect(hv.stats().domains.every((d) => d.busyGrants === 0 && d.mappings === 0)).toBe(true);
  });
});
