/**
 * A move that fails while preparing its exports (SPEC.md 11.8.2 step 4):
 * the exports already prepared are undone (the export move machine's
 * `aborted` from `moving`), the move fails with the error, and the buffer,
 * its exports and its importers are exactly as before.
 */
import { describe, expect, it } from 'vitest';
import { checkPattern, codeOf, expectClean, fillPattern, startWorld } from './world.ts';

const PAGES = 148;

describe('a move whose preparation fails', () => {
  it('undoes the exports already prepared; the buffer stays where it was, still readable by its importers', async () => {
    // One grant-table frame for the exporter: room for three locations of the buffer, not four.
    const w = await startWorld(3, [{ maxGrantFrames: 1 }, {}, {}]);
    const [a, b, c] = w.doms as [typeof w.doms[0], typeof w.doms[0], typeof w.doms[0]];
    const buf = a.driver.heap.alloc(PAGES * 4096, { movable: true });
    const view = await buf.vmap();
    fillPattern(view, 7);
    await buf.vunmap(view);
    const toB = await a.driver.exportRemote(buf, b.domid);
    const toC = await a.driver.exportRemote(buf, c.domid);
    const generation = buf.generation;
    expect(await codeOf(a.driver.move(buf))).toBe('ERR_LIMIT');
    expect(buf.generation).toBe(generation);
    expect(a.driver.stats().exporter.move).toMatchObject({ moveAborts: 1 });
    for (const [d, hid] of [[b, toB], [c, toC]] as const) {
      const fd = await d.driver.exportFd(hid);
      const v = await fd.vmap();
      expect(checkPattern(v, 7)).toBe(-1);
      await fd.vunmap(v);
      await fd.put();
    }
    for (const hid of [toB, toC]) {
      await a.driver.unexport(hid);
      await a.driver.waitReleased(hid, 10_000);
    }
    await buf.put();
    expectClean(w);
  });
});
