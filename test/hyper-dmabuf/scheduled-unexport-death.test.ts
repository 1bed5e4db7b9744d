/**
 * The importer dies while an unexport of its buffer waits for its delay
 * (SPEC.md 11.1: the export machine's `importer-died` from
 * `unexport-scheduled`): its fds count as released, the scheduled unexport
 * settles, and the export is freed without waiting for the delay.
 */
import { describe, expect, it } from 'vitest';
import { DOMAIN_DIED } from '../../protocol/messages/session.ts';
import { ExportState } from '../../src/hyper-dmabuf/index.ts';
import { expectClean, nextEvent, startWorld } from './world.ts';

describe('an importer that dies during a delayed unexport', () => {
  it('frees the export at once; the scheduled unexport settles', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [typeof w.doms[0], typeof w.doms[0]];
    const buf = a.driver.heap.alloc(2 * 4096);
    const hid = await a.driver.exportRemote(buf, b.domid);
    await b.driver.exportFd(hid);
    const scheduled = a.driver.unexport(hid, { delayMs: 3_600_000 });
    expect(a.driver.query(hid).state).toBe(ExportState.UnexportScheduled);
    const released = a.driver.waitReleased(hid, 10_000);
    const died = nextEvent(a.kernel.hv, DOMAIN_DIED);
    await w.hv.destroyDomain(b.domid);
    await died;
    await released;
    expect(await scheduled).toBe('unexported');
    expect(buf.use()).toMatchObject({ attachments: 0, mappings: 0 });
    await buf.put();
    expectClean(w);
  });
});
