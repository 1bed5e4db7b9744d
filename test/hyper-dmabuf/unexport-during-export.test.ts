/**
 * An unexport scheduled while the DMABUF_EXPORT is still unanswered, then
 * the importer refuses the EXPORT (SPEC.md 11.1: the export machine's
 * `export-failed` from `unexport-scheduled`). The export is taken back at
 * once: exportRemote fails with the refusal, the scheduled unexport settles
 * as 'unexported' without waiting for its delay, and everything is freed.
 */
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../protocol/errors.ts';
import { DMABUF_EXPORT, DMABUF_PEER_HELLO } from '../../protocol/messages/dmabuf.ts';
import { copyHid, ExportState, type Hid } from '../../src/hyper-dmabuf/index.ts';
import { codeOf, expectClean, startWorld } from './world.ts';

describe('an unexport scheduled while the EXPORT is unanswered', () => {
  it('settles as soon as the importer refuses the EXPORT; the export is freed without waiting for the delay', async () => {
    const w = await startWorld(1);
    const [a] = w.doms as [typeof w.doms[0]];
    // The importer is played by hand: it holds the EXPORT until the test refuses it.
    const importer = await w.addBare();
    importer.kernel.hv.handlePeerRequest(DMABUF_PEER_HELLO, (body) => ({ format: body.formats[0]!, formats: body.formats, maxPriv: body.maxPriv, maxPages: body.maxPages }));
    let refuse!: (e: Error) => void;
    const received = new Promise<Hid>((resolveHid) => {
      importer.kernel.hv.handlePeerRequest(DMABUF_EXPORT, (body) => {
        resolveHid(copyHid(body.hid));
        return new Promise<Record<string, never>>((_, reject) => { refuse = reject; });
      });
    });
    const buf = a.driver.heap.alloc(2 * 4096);
    const exporting = a.driver.exportRemote(buf, importer.domid);
    const hid = await received;
    // An hour's delay: the test ends long before it, so only the refusal can settle the unexport.
    const scheduled = a.driver.unexport(hid, { delayMs: 3_600_000 });
    expect(a.driver.query(hid).state).toBe(ExportState.UnexportScheduled);
    refuse(new ProtocolError('ERR_LIMIT', 'no room for another import'));
    expect(await codeOf(exporting)).toBe('ERR_LIMIT');
    expect(await scheduled).toBe('unexported');
    await a.driver.waitReleased(hid, 10_000);
    expect(a.driver.stats().exporter).toMatchObject({ exported: 0, freed: 1 });
    expect(buf.use()).toMatchObject({ attachments: 0, mappings: 0 });
    await buf.put();
    expectClean(w);
  });
});
