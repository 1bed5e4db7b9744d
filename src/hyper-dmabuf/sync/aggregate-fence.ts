/**
 * A plain fence that signals once every fence of a list has, with the
 * first error among them (in list order). It stands for more pending
 * fences than one message can reference (DMABUF_RESV_GET's collapsed
 * answer). Unlike a dma_fence_array it is not a container, so the fence
 * layer can bridge it as one point; it is never stored in a reservation
 * object, so the nesting that containers must avoid cannot build up.
 */
import { DmaFence, DmaFenceCb, type DmaFenceOps } from '../../fence/dma-fence.ts';
import { ENOENT } from '../../fence/errno.ts';
import { allocateFenceContexts } from '../../fence/fence-context.ts';

const ops: DmaFenceOps = {
  getDriverName: () => 'hdmabuf-resv',
  getTimelineName: () => 'collapsed',
};

/** A fence for "all of these have signalled". */
export class AggregateFence extends DmaFence {
  /** How many fences it stands for. */
  readonly count: number;

  /** @param fences the fences to wait for; an empty list gives a signalled fence */
  constructor(fences: readonly DmaFence[]) {
    super(ops, allocateFenceContexts(1), 1);
    this.count = fences.length;
    const errors: number[] = new Array<number>(fences.length).fill(0);
    let left = fences.length;
    const done = (i: number, f: DmaFence): void => {
      const status = f.getStatus();
      errors[i] = status < 0 ? status : 0;
      if (--left > 0) return;
      const first = errors.find((e) => e < 0);
      if (first !== undefined) this.setError(first);
      this.signal();
    };
    if (left === 0) this.signal();
    fences.forEach((f, i) => {
      if (f.addCallback(new DmaFenceCb(() => done(i, f))) === ENOENT) done(i, f);
    });
  }
}
