/**
 * SPEC.md 11.2 rule 2 in version 2: the first fd of an import is returned
 * once the pages are mapped, before the exporter answers its EXPORT_FD, and
 * a refusal that comes after revokes it: unmapped before anything else, its
 * operations refused, nothing sent or counted for it at the exporter. In
 * version 1 the same refusal gives no fd at all.
 */
import { describe, expect, it } from 'vitest';
import { DMABUF_EXPORT } from '../../protocol/messages/dmabuf.ts';
import { codeOf, expectClean, startWorld } from './world.ts';

describe('an early first fd (SPEC 11.2 rule 2)', () => {
  it.each([1, 2])('refused by the exporter (v%i): v1 returns no fd; v2 revokes the fd it returned and unmaps its pages', async (version) => {
    const w = await startWorld(2, { maxVersion: version });
    const [a, b] = w.doms as [typeof w.doms[0], typeof w.doms[0]];
    const buf = a.driver.heap.alloc(8 * 4096);
    const real = await a.driver.exportRemote(buf, b.domid);
    const exported = a.driver.exporter.find(real)!;
    // A buggy exporter announces an id it does not hold, over the real export's directory (granted
    // to b): the backend maps it, and the exporter refuses the fd with ERR_UNKNOWN_BUFFER.
    const forged = { dom: a.domid, cnt: real.cnt + 1000, key: new Uint8Array(16).fill(7) };
    await a.kernel.hv.peerRequest(DMABUF_EXPORT, b.domid, {
      hid: forged, nents: 8, firstOffset: 0, lastLength: 4096, dirRef: exported.directory.refs[0]!, dirFormat: exported.directory.format,
      access: 'ro', priv: new Uint8Array(0),
    });
    if (version === 1) {
      expect(await codeOf(b.driver.exportFd(forged))).toBe('ERR_UNKNOWN_BUFFER');
    } else {
      const fd = await b.driver.exportFd(forged);
      expect(await b.driver.importer.confirmation(fd)).toBe('revoked');
      // Revoked: nothing maps the exporter's pages in its name, the import is forgotten.
      expect(w.hv.stats().domains.find((d) => d.domid === b.domid)!.mappings).toBe(0);
      expect(w.hv.stats().domains.find((d) => d.domid === a.domid)!.busyGrants).toBe(0);
      expect(b.driver.importer.find(forged)).toBeUndefined();
      expect(await codeOf(fd.vmap())).toBe('ERR_UNEXPORTED');
      expect(await codeOf(fd.beginCpuAccess('from_device'))).toBe('ERR_UNEXPORTED');
      await fd.put();
    }
    const s = b.driver.stats().importer;
    expect({ early: s.earlyFds, revoked: s.fdsRevoked, refused: s.fdsRefused, open: s.openFds }).toEqual({ early: version === 2 ? 1 : 0, revoked: version === 2 ? 1 : 0, refused: 1, open: 0 });
    // The exporter never counted it, and the real export is untouched.
    expect(exported.fds.size).toBe(0);
    const fd = await b.driver.exportFd(real);
    expect(await b.driver.importer.confirmation(fd)).toBe('counted');
    expect(exported.fds.size).toBe(1);
    await fd.put();
    await a.driver.unexport(real);
    await a.driver.waitReleased(real, 10_000);
    await buf.put();
    expectClean(w);
  });
});
