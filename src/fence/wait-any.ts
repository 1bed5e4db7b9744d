/**
 * dma_fence_wait_any_timeout (drivers/dma-buf/dma-fence.c): wait for the first of several fences.
 */
import { armTimeout, nowMs, remainingMs } from './clock.ts';
import { type DmaFence, DmaFenceCb } from './dma-fence.ts';
import { EINVAL, ERESTARTSYS } from './errno.ts';

/** Result of {@link waitAny}. */
export interface WaitAnyResult {
  /** As dma_fence_wait_any_timeout: 0 timeout, >0 remaining ms (1 for timeout 0), or negative errno. */
  ret: number;
  /** Index of the (first, in array order) signalled fence when `ret > 0`, else -1. */
  index: number;
}

/**
 * dma_fence_wait_any_timeout: wait until any of `fences` signals.
 *
 * @returns {@link EINVAL} for an empty list or negative timeout. With timeout 0:
 *   `{ret: 1, index}` if one is signalled, else `{ret: 0}`. Otherwise the
 *   remaining time and the lowest index found signalled on wake-up (an
 *   already-signalled fence returns at once with `ret = timeoutMs`), 0 on
 *   timeout, {@link ERESTARTSYS} if `abort` fires.
 */
export function waitAny(
  fences: readonly DmaFence[],
  timeoutMs: number,
  abort?: AbortSignal,
): Promise<WaitAnyResult> {
  if (fences.length === 0 || !(timeoutMs >= 0)) return Promise.resolve({ ret: EINVAL, index: -1 });
  if (timeoutMs === 0) {
    const index = fences.findIndex((f) => f.isSignaled());
    return Promise.resolve(index >= 0 ? { ret: 1, index } : { ret: 0, index: -1 });
  }

  const cbs: DmaFenceCb[] = [];
  const removeAll = (): void => {
    cbs.forEach((cb, i) => fences[i]?.removeCallback(cb));
  };
  return new Promise<WaitAnyResult>((resolve) => {
    const start = nowMs();
    let done = false;
    let cancelTimer = (): void => {};
    const onAbort = (): void => finish({ ret: ERESTARTSYS, index: -1 });
    const finish = (result: WaitAnyResult): void => {
      if (done) return;
      done = true;
      cancelTimer();
      abort?.removeEventListener('abort', onAbort);
      removeAll();
      resolve(result);
    };
    const wake = (): void => {
      // dma_fence_test_signaled_any: the lowest signalled index wins.
      const index = fences.findIndex((f) => f.testSignaledFlag());
      finish({ ret: remainingMs(timeoutMs, start), index });
    };
    for (const [i, fence] of fences.entries()) {
      const cb = new DmaFenceCb(wake);
      if (fence.addCallback(cb) !== 0) {
        finish({ ret: timeoutMs, index: i });
        return;
      }
      cbs.push(cb);
    }
    if (abort?.aborted === true) {
      onAbort();
      return;
    }
    cancelTimer = armTimeout(timeoutMs, () => finish({ ret: 0, index: -1 }));
    abort?.addEventListener('abort', onAbort, { once: true });
  });
}
