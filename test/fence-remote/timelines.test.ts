/**
 * The owner's SharedTimeline and the observer's RemoteTimeline over one
 * page, without transport: statuses, slots, ordering, closing, and the
 * protocol violations an observer must survive.
 */
import { describe, expect, it } from 'vitest';
import { EINVAL, EIO, ENOENT } from '../../src/fence/errno.ts';
import { DmaFenceCb } from '../../src/fence/dma-fence.ts';
import { EPROTO, FENCE_ERR_OWNER_DIED } from '../../src/fence/errno.ts';
import { TimelinePageWriter } from '../../src/fence-remote/timeline-page.ts';
import { loopback, PEER } from './loopback.ts';

describe('SharedTimeline (owner side)', () => {
  it('creates points like sw_sync: born signalled when reached, one object per pending seqno', () => {
    const { owner } = loopback();
    const a = owner.createFence(3);
    expect(owner.createFence(3)).toBe(a);
    expect(owner.createFence(0).isSignaled()).toBe(true);
    expect(a.seqno64).toBe(true);
    expect(owner.signal(2)).toBe(0);
    expect(a.isSignaled()).toBe(false);
    expect(owner.signal(5)).toBe(1);
    expect(a.getStatus()).toBe(1);
    expect(owner.createFence(4).isSignaled()).toBe(true);
    expect(() => owner.signal(4)).toThrow(/cannot go back/);
    expect(() => owner.createFence(-1)).toThrow(/seqno/);
    expect(() => owner.createFence(2 ** 53)).toThrow(/seqno/);
  });

  it('gives an advance\'s error to every point it passes, and none to later advances', () => {
    const { owner } = loopback();
    const [p1, p2, p3] = [1, 2, 3].map((s) => owner.createFence(s));
    owner.signal(1);
    owner.signal(2, EIO);
    owner.signal(3);
    expect([p1!.getStatus(), p2!.getStatus(), p3!.getStatus()]).toEqual([1, EIO, 1]);
    expect(() => owner.signal(4, 5)).toThrow(/errno/);
  });

  it('closes with -ENOENT for every pending point and refuses more work', () => {
    const { owner } = loopback();
    const p = owner.createFence(9);
    expect(owner.close()).toBe(1);
    expect(p.getStatus()).toBe(ENOENT);
    expect(owner.close()).toBe(0);
    expect(() => owner.createFence(10)).toThrow(/closed/);
    expect(() => owner.signal(10)).toThrow(/closed/);
  });

  it('assigns a slot per exported pending point, and frees it once every count is returned', () => {
    const { owner } = loopback();
    const p = owner.createFence(1);
    const h1 = owner.hold(p, PEER);
    const h2 = owner.hold(p, 3);
    expect(h1).toEqual({ slot: 0 });
    expect(h2).toEqual({ slot: 0 });
    expect(owner.slotHolds).toBe(2);
    owner.signal(1);
    expect(owner.hold(p, PEER)).toEqual({ status: 1 });
    expect(owner.release(PEER, [0]).unheld).toEqual([]);
    expect(owner.dropPeer(3).unheld).toHaveLength(1);
    expect(owner.slotsUsed).toBe(0);
  });

  it('refuses an export when all 252 slots hold exported pending points', () => {
    const { owner } = loopback();
    for (let s = 1; s <= 252; s++) owner.hold(owner.createFence(s), PEER);
    expect(() => owner.hold(owner.createFence(253), PEER)).toThrow(/error slots/);
    owner.signal(1);
    owner.release(PEER, [0]);
    expect(owner.hold(owner.createFence(253), PEER)).toEqual({ slot: 0 });
  });
});

describe('RemoteTimeline (observer side) over the same page', () => {
  it('signals an imported point with the owner\'s status when the page passes it, and returns its count', () => {
    const lb = loopback();
    const p = lb.owner.createFence(2);
    const f = lb.export(p);
    expect(f.isSignaled()).toBe(false);
    expect(f.timelineName).toBe('loop@d1');
    expect(lb.observer.pendingPoints).toBe(1);
    lb.owner.signal(2, EIO);
    expect(lb.events).toBe(1);
    expect(f.getStatus()).toBe(EIO);
    expect(lb.released).toEqual([0]);
    expect(lb.owner.slotsUsed).toBe(0);
  });

  it('needs no event to see a signal: checking reads the page', () => {
    const lb = loopback('quiet', false);
    const f = lb.export(lb.owner.createFence(1));
    lb.owner.signal(1);
    expect(f.testSignaledFlag()).toBe(false);
    expect(f.isSignaled()).toBe(true);
    expect(f.getStatus()).toBe(1);
  });

  it('imports the same pending point as the same fence, holding one count per reference', () => {
    const lb = loopback();
    const p = lb.owner.createFence(4);
    const f1 = lb.export(p);
    const f2 = lb.export(p);
    expect(f2).toBe(f1);
    expect(lb.observer.holdCount).toBe(2);
    lb.owner.signal(4);
    expect(lb.released).toEqual([0, 0]);
    expect(lb.owner.slotHolds).toBe(0);
  });

  it('imports a point exported already signalled with its status, without a slot', () => {
    const lb = loopback();
    const p = lb.owner.createFence(1);
    lb.owner.signal(1, EIO);
    const f = lb.export(p);
    expect(f.getStatus()).toBe(EIO);
    expect(f.context).toBe(lb.observer.context);
    expect(lb.owner.slotsUsed).toBe(0);
  });

  it('runs callbacks in order and keeps the dma_fence return conventions', () => {
    const lb = loopback();
    const f = lb.export(lb.owner.createFence(1));
    const order: number[] = [];
    expect(f.addCallback(new DmaFenceCb(() => order.push(1)))).toBe(0);
    expect(f.addCallback(new DmaFenceCb(() => order.push(2)))).toBe(0);
    lb.owner.signal(1);
    expect(order).toEqual([1, 2]);
    expect(f.addCallback(new DmaFenceCb(() => order.push(3)))).toBe(ENOENT);
    expect(f.signal()).toBe(EINVAL);
  });

  it('on a closed page, gives pending points the status in their slots', () => {
    const lb = loopback();
    const f = lb.export(lb.owner.createFence(7));
    lb.owner.close();
    expect(f.getStatus()).toBe(ENOENT);
  });

  it('finalises with the given status what the page has not passed (owner died)', () => {
    const lb = loopback('dying', false);
    const f1 = lb.export(lb.owner.createFence(1));
    const f2 = lb.export(lb.owner.createFence(2));
    lb.owner.signal(1);
    expect(lb.observer.finalize(FENCE_ERR_OWNER_DIED)).toBe(1);
    expect(f1.getStatus()).toBe(1);
    expect(f2.getStatus()).toBe(FENCE_ERR_OWNER_DIED);
    expect(lb.observer.finalize(FENCE_ERR_OWNER_DIED)).toBe(0);
    expect(() => lb.observer.checkRef(3, 0)).toThrow(/closed/);
  });

  it('refuses a reference whose slot is not tagged with its seqno, or is out of range', () => {
    const lb = loopback();
    lb.owner.hold(lb.owner.createFence(5), PEER);
    expect(() => lb.observer.checkRef(6, 0)).toThrow(/tagged 5/);
    expect(() => lb.observer.checkRef(5, 252)).toThrow(/outside/);
  });

  it('reads a page that says the point passed but whose slot is not final as -EPROTO (a lying owner)', () => {
    const lb = loopback('liar', false);
    const f = lb.export(lb.owner.createFence(3));
    // The owner publishes the seqno without writing the slot status first.
    new TimelinePageWriter(lb.page, 0).publishSeqno(3);
    lb.observer.poll();
    expect(f.getStatus()).toBe(EPROTO);
    expect(lb.observer.stats().protocolErrors).toBe(1);
  });
});
