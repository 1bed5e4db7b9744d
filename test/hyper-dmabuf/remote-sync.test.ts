/**
 * In-process: remote sync (OPS_TO_SOURCE). Each op on the importer's
 * dma-buf is mirrored on the exporter's buffer, acknowledged or
 * fire-and-forget; BUSY reflects it; release undoes the shadow (the
 * original leaked shadow attachments); a refused acknowledged op fails locally.
 */
import { describe, expect, it } from 'vitest';
import { DMABUF_OPS_TO_SOURCE, DMABUF_OPS_TO_SOURCE_ASYNC } from '../../protocol/messages/dmabuf.ts';
import { codeOf, expectClean, startWorld } from './world.ts';

describe('remote sync', () => {
  it('mirrors attach, map, CPU access, vmap and kmap, acknowledged, and undoes them at release', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [typeof w.doms[0], typeof w.doms[0]];
    const buf = a.driver.heap.alloc(4 * 4096, { scattered: true });
    const hid = await a.driver.exportRemote(buf, b.domid);
    const fd = await b.driver.exportFd(hid, { sync: 'ack' });
    const base = buf.use();
    const att = await fd.attach('gpu');
    const sgt = await fd.map(att, 'to_device');
    // The importer's table names the exporter's frames, as the backend reported them.
    expect(sgt.dom).toBe(a.domid);
    expect(Array.from(sgt.frames())).toEqual(Array.from(buf.priv.frames));
    await fd.beginCpuAccess('from_device');
    const view = await fd.vmap();
    const page = await fd.kmap(2);
    expect(page.byteLength).toBe(4096);
    expect(buf.use()).toEqual({ ...base, attachments: base.attachments + 1, mappings: base.mappings + 1, cpuAccess: 1, vmaps: 1, kmaps: 1 });
    const shadow = a.driver.exporter.find(hid)!.fds.values().next().value!;
    expect(shadow.use()).toEqual({ attachments: 1, mappings: 1, cpuAccess: 1, vmaps: 1, kmaps: 1, pins: 0 });
    expect(a.driver.query(hid).busy).toBe(true);
    // A detach of a mapped attachment: the exporter says ERR_BUSY, and the local op fails too.
    expect(await codeOf(b.kernel.hv.peerRequest(DMABUF_OPS_TO_SOURCE, a.domid, { hid, fdId: 1, op: 'detach' }))).toBe('ERR_BUSY');
    await fd.kunmap(2, page);
    await fd.vunmap(view);
    await fd.endCpuAccess('from_device');
    await fd.unmap(att, sgt);
    await fd.detach(att);
    expect(buf.use()).toEqual(base);
    // Leave some behind: release undoes them on both sides.
    await fd.attach('display');
    await fd.beginCpuAccess();
    expect(shadow.outstanding).toBe(2);
    await fd.put();
    expect(buf.use()).toEqual(base);
    expect(a.driver.query(hid).busy).toBe(false);
    expect(a.driver.stats().exporter).toMatchObject({ opsRefused: 1, shadowOutstanding: 0 });
    await a.driver.unexport(hid);
    await a.driver.waitReleased(hid);
    await buf.put();
    expectClean(w);
  });

  it('mirrors fire-and-forget ops in order, and drops (and counts) the ones the exporter refuses', async () => {
    const w = await startWorld(2, { driver: { syncMode: 'async' } });
    const [a, b] = w.doms as [typeof w.doms[0], typeof w.doms[0]];
    const buf = a.driver.heap.alloc(4096);
    const hid = await a.driver.exportRemote(buf, b.domid);
    const fd = await b.driver.exportFd(hid);
    const att = await fd.attach('gpu');
    await fd.map(att);
    await fd.vmap();
    // Fire-and-forget: an acknowledged request after them is answered after they were applied.
    const probe = await b.kernel.hv.peerRequest(DMABUF_OPS_TO_SOURCE, a.domid, { hid, fdId: 1, op: 'begin_cpu_access' });
    expect(probe.busy).toBe(true);
    const shadow = a.driver.exporter.find(hid)!.fds.get(1)!;
    expect(shadow.use()).toEqual({ attachments: 1, mappings: 1, cpuAccess: 1, vmaps: 1, kmaps: 0, pins: 0 });
    // Refused: an undo with nothing to undo.
    b.kernel.hv.peerNotify(DMABUF_OPS_TO_SOURCE_ASYNC, a.domid, { hid, fdId: 1, op: 'kunmap', page: 0 });
    await b.kernel.hv.peerRequest(DMABUF_OPS_TO_SOURCE, a.domid, { hid, fdId: 1, op: 'end_cpu_access' });
    expect(a.driver.stats().exporter.asyncOpsDropped).toBe(1);
    const released = a.driver.unexport(hid).then(() => a.driver.waitReleased(hid, 10_000));
    await fd.put();
    await released;
    expect(buf.use()).toMatchObject({ attachments: 0, mappings: 0, vmaps: 0, cpuAccess: 0 });
    await buf.put();
    expectClean(w);
  });
});
