/**
 * An owner timeline and an observer's import of it over one ArrayBuffer, in
 * one process: the page protocol without any transport. notify() stands for
 * the event channel (it polls the observer), release() for
 * FENCE_SLOTS_RELEASE (it returns the counts to the owner at once).
 */
import { RemoteTimeline } from '../../src/fence-remote/remote-timeline.ts';
import { type SharedFence, SharedTimeline } from '../../src/fence-remote/shared-timeline.ts';
import { TimelinePageReader, TimelinePageWriter } from '../../src/fence-remote/timeline-page.ts';
import type { RemoteFence } from '../../src/fence-remote/remote-fence.ts';

/** The observer's domain in loopback pairs. */
export const PEER = 2;

/** A loopback pair. */
export interface Loopback {
  owner: SharedTimeline;
  observer: RemoteTimeline;
  page: ArrayBuffer;
  /** Events "sent" to the observer. */
  events: number;
  /** Counts returned by the observer. */
  released: number[];
  /** Exports a point: holds a slot count and imports it on the observer side. */
  export(point: SharedFence): RemoteFence;
}

/** Builds a loopback pair; `deliver: false` drops events (to test checks without wake-ups). */
export function loopback(name = 'loop', deliver = true): Loopback {
  const page = new ArrayBuffer(4096);
  const lb = { events: 0, released: [] as number[] } as Loopback;
  lb.page = page;
  lb.owner = new SharedTimeline({
    id: 1, name, page: new TimelinePageWriter(page, 0),
    notify: () => { lb.events++; if (deliver) lb.observer.poll(); },
  });
  lb.observer = new RemoteTimeline({
    owner: 1, tl: 1, name, reader: new TimelinePageReader(page),
    release: (slots) => { lb.released.push(...slots); lb.owner.release(PEER, slots); },
  });
  lb.export = (point) => {
    const h = lb.owner.hold(point, PEER);
    if ('slot' in h) {
      lb.observer.checkRef(point.seqno, h.slot);
      const f = lb.observer.importPending(point.seqno, h.slot);
      lb.observer.poll();
      return f;
    }
    return lb.observer.importSignalled(point.seqno, h.status);
  };
  return lb;
}
