/**
 * FENCE_TIMELINE_SHARE that the observer cannot set up (SPEC.md 11A.4, the
 * message's errors): a grant it cannot map is ERR_FENCE_SETUP_FAILED, a page
 * whose header is wrong is ERR_FENCE_BAD_PAGE. Either way the timeline
 * import goes setting-up -> closed (its `torn-down` from `setting-up`) and
 * the observer is left holding nothing: no import, mapping or port.
 */
import { describe, expect, it } from 'vitest';
import { FENCE_TIMELINE_SHARE } from '../../protocol/messages/fence.ts';
import { NOTHING, fenceResources, startPeers } from './pair.ts';

describe('a timeline share the observer refuses', () => {
  it('an unmappable grant: ERR_FENCE_SETUP_FAILED, nothing held', async () => {
    const { peers: [a, b] } = await startPeers(2);
    const port = await a!.kernel.evtchn.allocUnbound(b!.domid);
    const share = a!.kernel.hv.peerRequest(FENCE_TIMELINE_SHARE, b!.domid, { tl: 1, name: 'never-granted', gref: 4000, port });
    await expect(share).rejects.toMatchObject({ code: 'ERR_FENCE_SETUP_FAILED' });
    expect(fenceResources(b!)).toEqual(NOTHING);
    await a!.kernel.evtchn.close(port);
  });

  it('a page without a timeline header: ERR_FENCE_BAD_PAGE, the page unmapped again', async () => {
    const { peers: [a, b] } = await startPeers(2);
    const frames = a!.kernel.allocator.alloc(1);
    const gref = await a!.kernel.grants.grantAccess(b!.domid, frames[0]!, true);
    const port = await a!.kernel.evtchn.allocUnbound(b!.domid);
    const share = a!.kernel.hv.peerRequest(FENCE_TIMELINE_SHARE, b!.domid, { tl: 2, name: 'zeros', gref, port });
    await expect(share).rejects.toMatchObject({ code: 'ERR_FENCE_BAD_PAGE' });
    expect(fenceResources(b!)).toEqual(NOTHING);
    // Unmapped by the observer: the owner's grant ends at once.
    expect(a!.kernel.grants.endAccess(gref)).toBe('ended');
    a!.kernel.allocator.free(frames);
    await a!.kernel.evtchn.close(port);
    expect(fenceResources(a!)).toEqual(NOTHING);
  });
});
