/**
 * In-process: optional layers (SPEC 6, "Optional layers"). A domain that
 * runs only the hyper_dmabuf driver says so in DMABUF_PEER_HELLO's `layers`,
 * and answers a routed request of a layer it lacks (fences here) with
 * ERR_UNSUPPORTED_LAYER, not ERR_UNKNOWN_TYPE, keeping nothing for it.
 */
import { describe, expect, it } from 'vitest';
import { DMABUF_PEER_HELLO } from '../../protocol/messages/dmabuf.ts';
import { DMABUF_RESV_GET } from '../../protocol/messages/dmabuf-sync.ts';
import { FENCE_TIMELINE_SHARE, FENCE_TIMELINE_UNSHARE } from '../../protocol/messages/fence.ts';
import { DmabufSync, FenceHost } from '../../src/index.ts';
import { codeOf, expectClean, startWorld } from './world.ts';

describe('optional layers (SPEC 6)', () => {
  it('DMABUF_PEER_HELLO carries the layers each side answers; a missing layer answers ERR_UNSUPPORTED_LAYER', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [typeof w.doms[0], typeof w.doms[0]];
    const answer = await a.kernel.hv.peerRequest(DMABUF_PEER_HELLO, b.domid, { formats: ['multilevel', 'linked'], maxPriv: 4096, maxPages: 16, layers: ['dmabuf'] });
    expect(answer.layers).toEqual(b.kernel.hv.implementedLayers());
    expect(answer.layers).toContain('dmabuf');
    expect(answer.layers).not.toContain('fence');
    // No fence layer on b: a share is refused with the dedicated code.
    expect(await codeOf(a.kernel.hv.peerRequest(FENCE_TIMELINE_SHARE, b.domid, { tl: 1, name: 't', gref: 1, port: 1 }))).toBe('ERR_UNSUPPORTED_LAYER');
    expectClean(w);
  });

  it('a domain built as the README\'s library example (driver, FenceHost, DmabufSync) announces and answers the fence and dmabuf-sync layers', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [typeof w.doms[0], typeof w.doms[0]];
    const fences = new FenceHost(b.kernel);
    const sync = DmabufSync.load(b.driver, fences);
    try {
      const answer = await a.kernel.hv.peerRequest(DMABUF_PEER_HELLO, b.domid, { formats: ['multilevel'], maxPriv: 4096, maxPages: 16 });
      expect(answer.layers).toEqual(['dmabuf', 'dmabuf-sync', 'fence', 'session']);
      // Answered by the layers themselves, with their own errors (SPEC 11A.14), not refused as missing.
      expect(await codeOf(a.kernel.hv.peerRequest(FENCE_TIMELINE_UNSHARE, b.domid, { tl: 9, reason: 'unshared' }))).toBe('ERR_FENCE_UNKNOWN_TIMELINE');
      const hid = { dom: b.domid, cnt: 99, key: new Uint8Array(16) };
      expect(await codeOf(a.kernel.hv.peerRequest(DMABUF_RESV_GET, b.domid, { hid, fdId: 1, usage: 'read' }))).toBe('ERR_UNKNOWN_BUFFER');
    } finally {
      sync.close();
      await fences.shutdown();
    }
    expectClean(w);
  });
});
