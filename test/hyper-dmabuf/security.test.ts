/**
 * In-process: who may touch a buffer. A third domain cannot import (even
 * with the right id), a wrong key is an unknown buffer, an id naming another
 * domain than its sender is refused, and every bound is enforced on both
 * sides (private data refused, never truncated).
 */
import { describe, expect, it } from 'vitest';
import { GNTMAP, GNTST } from '../../protocol/grant-abi.ts';
import { GNTTAB_MAP_DIRECTORY, GNTTAB_MAP_GRANT_REF_V2 } from '../../protocol/messages/grant.ts';
import {
  DMABUF_EXPORT, DMABUF_EXPORT_FD, DMABUF_NOTIFY_UNEXPORT, DMABUF_OPS_TO_SOURCE, DMABUF_PEER_HELLO,
} from '../../protocol/messages/dmabuf.ts';
import { codeOf, expectClean, startWorld } from './world.ts';

const wrongKey = <T extends { key: Uint8Array }>(hid: T): T => {
  const key = Uint8Array.from(hid.key);
  key[15] = key[15]! ^ 1;
  return { ...hid, key };
};

describe('access control', () => {
  it('a third domain cannot import, even with the right id; a wrong key is unknown everywhere', async () => {
    const w = await startWorld(3);
    const [a, b, c] = w.doms as [typeof w.doms[0], typeof w.doms[0], typeof w.doms[0]];
    const buf = a.driver.heap.alloc(8 * 4096);
    const hid = await a.driver.exportRemote(buf, b.domid);
    // C's driver holds no such import.
    expect(await codeOf(c.driver.exportFd(hid))).toBe('ERR_UNKNOWN_BUFFER');
    // Asking the exporter directly: refused, C is not the importer.
    expect(await codeOf(c.kernel.hv.peerRequest(DMABUF_EXPORT_FD, a.domid, { hid, fdId: 1 }))).toBe('ERR_NOT_IMPORTER');
    expect(await codeOf(c.kernel.hv.peerRequest(DMABUF_OPS_TO_SOURCE, a.domid, { hid, fdId: 1, op: 'attach' }))).toBe('ERR_NOT_IMPORTER');
    // And the grants themselves name B: the backend refuses C's map of the directory and data refs.
    const entry = a.driver.exporter.find(hid)!;
    const refs = [...entry.directory.refs, ...entry.dataRefs];
    const r = await c.kernel.hv.call(GNTTAB_MAP_GRANT_REF_V2, { dom: a.domid, flags: GNTMAP.host_map | GNTMAP.readonly, refs: Uint32Array.from(refs) });
    expect(new Set(r.status)).toEqual(new Set([GNTST.permission_denied]));
    // Nor can it have the backend read the directory for it (v2): the top page's map is refused, nothing is mapped.
    const d = await c.kernel.hv.call(GNTTAB_MAP_DIRECTORY, {
      dom: a.domid, flags: GNTMAP.host_map | GNTMAP.readonly, format: 'multilevel', dirRef: entry.directory.refs[0]!, nents: entry.dataRefs.length,
    });
    expect({ dirStatus: Array.from(d.dirStatus), mapped: d.status.length }).toEqual({ dirStatus: [GNTST.permission_denied], mapped: 0 });
    // Wrong key: unknown to the importer, to the exporter, to query and to unexport.
    const bad = wrongKey(hid);
    expect(await codeOf(b.driver.exportFd(bad))).toBe('ERR_UNKNOWN_BUFFER');
    expect(await codeOf(b.kernel.hv.peerRequest(DMABUF_EXPORT_FD, a.domid, { hid: bad, fdId: 1 }))).toBe('ERR_UNKNOWN_BUFFER');
    expect(await codeOf(() => b.driver.query(bad))).toBe('ERR_UNKNOWN_BUFFER');
    expect(await codeOf(a.driver.unexport(bad))).toBe('ERR_UNKNOWN_BUFFER');
    expect(a.driver.stats().exporter.openFds).toBe(0);
    await a.driver.unexport(hid);
    await a.driver.waitReleased(hid);
    await buf.put();
    expectClean(w);
  });

  it('refuses an id that names another domain than its sender', async () => {
    const w = await startWorld(3);
    const [a, b, c] = w.doms as [typeof w.doms[0], typeof w.doms[0], typeof w.doms[0]];
    const buf = c.driver.heap.alloc(4096);
    const real = await c.driver.exportRemote(buf, b.domid);
    // A claims C's buffer (right counter and key even): B refuses, and its import from C is untouched.
    const spoof = { hid: real, nents: 1, firstOffset: 0, lastLength: 4096, dirRef: 5, dirFormat: 'multilevel' as const, access: 'rw' as const, priv: new Uint8Array(0) };
    expect(await codeOf(a.kernel.hv.peerRequest(DMABUF_EXPORT, b.domid, spoof))).toBe('ERR_ID_DOMAIN_MISMATCH');
    expect(await codeOf(a.kernel.hv.peerRequest(DMABUF_EXPORT, b.domid, { ...spoof, nents: 0, dirRef: 0, lastLength: 0 }))).toBe('ERR_ID_DOMAIN_MISMATCH');
    expect(await codeOf(a.kernel.hv.peerRequest(DMABUF_NOTIFY_UNEXPORT, b.domid, { hid: real }))).toBe('ERR_ID_DOMAIN_MISMATCH');
    expect(b.driver.query(real)).toMatchObject({ unexported: false, exporter: c.domid });
    expect(b.driver.stats().importer.refusedExports).toBe(2);
    await c.driver.unexport(real);
    await c.driver.waitReleased(real);
    await buf.put();
    expectClean(w);
  });

  it('refuses private data over either side\'s limit, before anything is granted, and never truncates', async () => {
    const w = await startWorld(2, [{}, { driver: { maxPriv: 100 } }]);
    const [a, b] = w.doms as [typeof w.doms[0], typeof w.doms[0]];
    const buf = a.driver.heap.alloc(4096);
    expect(await codeOf(a.driver.exportRemote(buf, b.domid, { priv: new Uint8Array(4097) }))).toBe('ERR_PRIV_TOO_LARGE');
    expect(await codeOf(a.driver.exportRemote(buf, b.domid, { priv: new Uint8Array(101) }))).toBe('ERR_PRIV_TOO_LARGE');
    expect(a.kernel.stats().grants.granted).toBe(0);
    const hid = await a.driver.exportRemote(buf, b.domid, { priv: new Uint8Array(100).fill(9) });
    expect(b.driver.query(hid).priv).toEqual(new Uint8Array(100).fill(9));
    // A hostile exporter ignoring the negotiated limit is refused by the importer.
    const body = { hid, nents: 0, firstOffset: 0, lastLength: 0, dirRef: 0, dirFormat: 'multilevel' as const, access: 'ro' as const, priv: new Uint8Array(101) };
    expect(await codeOf(a.kernel.hv.peerRequest(DMABUF_EXPORT, b.domid, body))).toBe('ERR_PRIV_TOO_LARGE');
    expect(b.driver.query(hid).privSize).toBe(100);
    await a.driver.unexport(hid);
    await a.driver.waitReleased(hid);
    await buf.put();
    expectClean(w);
  });

  it('bounds every EXPORT field: geometry, directory ref, format, page count, duplicates', async () => {
    const w = await startWorld(2, [{}, { driver: { maxPages: 100, formats: ['linked'] } }]);
    const [a, b] = w.doms as [typeof w.doms[0], typeof w.doms[0]];
    const hid = a.driver.exporter['ids'].allocate();
    const ok = { hid, nents: 2, firstOffset: 0, lastLength: 4096, dirRef: 9, dirFormat: 'linked' as 'linked' | 'multilevel', access: 'ro' as const, priv: new Uint8Array(0) };
    const send = (over: Partial<typeof ok>) => codeOf(a.kernel.hv.peerRequest(DMABUF_EXPORT, b.domid, { ...ok, ...over }));
    expect(await send({ nents: 101 })).toBe('ERR_BUFFER_TOO_LARGE');
    expect(await send({ dirFormat: 'multilevel' })).toBe('ERR_BAD_DIRECTORY');
    expect(await send({ lastLength: 0 })).toBe('ERR_BAD_ARGUMENT');
    expect(await send({ nents: 1, firstOffset: 100, lastLength: 100 })).toBe('ERR_BAD_ARGUMENT');
    expect(await send({ dirRef: 0 })).toBe('ERR_BAD_ARGUMENT');
    expect(await send({ nents: 0 })).toBe('ERR_UNKNOWN_BUFFER');
    await a.kernel.hv.peerRequest(DMABUF_EXPORT, b.domid, ok);
    expect(await send({})).toBe('ERR_BAD_ARGUMENT');
    // Wire bounds are the codec's: a 15-byte key never reaches the driver.
    expect(await codeOf(a.kernel.hv.peerRequest(DMABUF_EXPORT, b.domid, { ...ok, hid: { ...hid, key: hid.key.subarray(1) } }))).toBe('ERR_FIELD_RANGE');
    // Negotiation: no common format.
    expect(await codeOf(a.kernel.hv.peerRequest(DMABUF_PEER_HELLO, b.domid, { formats: ['multilevel'], maxPriv: 0, maxPages: 1 }))).toBe('ERR_NO_COMMON_FORMAT');
    // The importer forgets the fake import when told.
    await a.kernel.hv.peerRequest(DMABUF_NOTIFY_UNEXPORT, b.domid, { hid });
    expect(b.driver.importer.find(hid)).toBeUndefined();
    // The driver's own export respects the importer's terms.
    const big = a.driver.heap.alloc(101 * 4096);
    expect(await codeOf(a.driver.exportRemote(big, b.domid))).toBe('ERR_BUFFER_TOO_LARGE');
    expect(await codeOf(a.driver.exportRemote(big, b.domid, { dirFormat: 'multilevel' }))).toBe('ERR_NO_COMMON_FORMAT');
    await big.put();
    a.driver.exporter['ids'].release(hid);
    expectClean(w);
  });
});
