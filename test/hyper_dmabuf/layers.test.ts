/**
 * In-process: optional layers (SPEC 6, "Optional layers"). A domain that
 * runs only the hyper_dmabuf driver says so in DMABUF_PEER_HELLO's `layers`,
 * and answers a routed request of a layer it lacks (fences here) with
 * ERR_UNSUPPORTED_LAYER, not ERR_UNKNOWN_TYPE, keeping nothing for it.
 */
import { describe, expect, it } from 'vitest';
import { DMABUF_PEER_HELLO } from '../../protocol/messages/dmabuf.ts';
import { FENCE_TIMELINE_SHARE } from '../../protocol/messages/fence.ts';
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
});
