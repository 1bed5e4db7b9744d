/**
 * An export the importer refuses (SPEC.md 11.1: DMABUF_EXPORT answered with
 * an error) is taken back at once: the export machine's `export-failed`
 * from `exported`, and from `unexport-scheduled` when the same buffer's
 * re-export is the one refused. Nothing stays granted or mapped.
 */
import { describe, expect, it } from 'vitest';
import { until } from '../helpers/wait.ts';
import { codeOf, expectClean, startWorld } from './world.ts';

describe('an export refused by its importer', () => {
  it('a new export over the importer\'s limit fails with its error and leaves nothing behind', async () => {
    const world = await startWorld(2, [{}, { driver: { maxImports: 1 } }]);
    const [a, b] = world.doms;
    const first = a!.driver.heap.alloc(4096);
    const second = a!.driver.heap.alloc(4096 * 2);
    const hid = await a!.driver.exportRemote(first, b!.domid);
    expect(await codeOf(a!.driver.exportRemote(second, b!.domid))).toBe('ERR_LIMIT');
    // Only the first counts as exported; the refused one went straight on to ending its grants.
    expect(a!.driver.stats().exporter).toMatchObject({ exported: 1, byState: { exported: 1, 'unexport-scheduled': 0, 'unexported-waiting-release': 0 } });
    await until(() => a!.driver.stats().exporter.byState.revoking === 0);
    await a!.driver.unexport(hid);
    await a!.driver.waitReleased(hid);
    await first.put();
    await second.put();
    expectClean(world);
  });
});
