/**
 * RemoteFence: the observer-side fence for a point of another domain's
 * timeline. It is an ordinary DmaFence (its own DmaFenceOps), so it can be
 * waited on with a timeout, merged, put in a sync_file or a DmaResv, and
 * its status is the owner's: it signals, with the owner's error, when the
 * timeline page says the owner has passed its point.
 *
 * Checking needs no message: `signaled` reads the page. Signalling is always
 * enabled (the observer re-reads the page on every event of the timeline),
 * so `enableSignaling` only checks once more.
 */
import { DmaFence, type DmaFenceOps } from '../fence/dma-fence.ts';
import { allocateFenceContexts } from '../fence/fence-context.ts';

/** Driver name of imported fences (sync_fence_info.driver_name). */
export const REMOTE_FENCE_DRIVER = 'hdmabuf-remote';

/** What a RemoteFence needs of its imported timeline. */
export interface RemoteFenceSource {
  /** Name shown as the fence's timeline name. */
  readonly timelineName: string;
  /** The local fence context standing for the remote timeline. */
  readonly context: number;
  /** Reads the page and signals every imported point it has passed. */
  poll(): void;
}

/** A fence on another domain's timeline, or a detached already-signalled one. */
export class RemoteFence extends DmaFence {
  static readonly #ops: DmaFenceOps<RemoteFence> = {
    getDriverName: () => REMOTE_FENCE_DRIVER,
    getTimelineName: (f) => f.source?.timelineName ?? 'detached',
    enableSignaling: (f) => {
      f.source?.poll();
      return !f.testSignaledFlag();
    },
    signaled: (f) => {
      f.source?.poll();
      return f.testSignaledFlag();
    },
  };

  /** The owner's domain. */
  readonly owner: number;
  /** The imported timeline, or null for a detached fence (exported already signalled, no timeline). */
  readonly source: RemoteFenceSource | null;
  /** The owner's timeline id (0 for a detached fence). */
  readonly tl: number;

  /**
   * A point of an imported timeline (pending until the page says otherwise).
   * Use the importer; tests may build one directly.
   */
  constructor(owner: number, source: RemoteFenceSource | null, tl: number, seqno: number) {
    super(RemoteFence.#ops, source?.context ?? allocateFenceContexts(1), seqno, { seqno64: true });
    this.owner = owner;
    this.source = source;
    this.tl = tl;
  }

  /**
   * A fence exported already signalled: signalled here with the exporter's
   * status (1 or a negative errno). It has a context of its own, so merging
   * never mistakes it for a point of some timeline.
   */
  static detached(owner: number, status: number): RemoteFence {
    const f = new RemoteFence(owner, null, 0, 0);
    if (status < 0) f.setError(status);
    f.signal();
    return f;
  }
}

/** The RemoteFence behind a fence, or null. */
export function toRemoteFence(fence: DmaFence): RemoteFence | null {
  return fence instanceof RemoteFence ? fence : null;
}
