/** Shared fixtures for the fence tests: mock fences, a seeded PRNG, async helpers. */
import { expect } from 'vitest';
import { DmaFence, type DmaFenceOps } from '../../src/fence/dma-fence.ts';
import { allocateFenceContexts } from '../../src/fence/fence-context.ts';
import { ErrnoError } from '../../src/fence/errno.ts';

/** Ops of the selftests' mock fence: no enable_signaling, no signaled poll. */
export const mockOps: DmaFenceOps = {
  getDriverName: () => 'mock',
  getTimelineName: () => 'mock',
};

/** st-dma-fence-unwrap's mock_fence / __mock_fence: a fresh context and seqno 1 unless given. */
export function mockFence(context = allocateFenceContexts(1), seqno = 1): DmaFence {
  return new DmaFence(mockOps, context, seqno);
}

/** mulberry32, shared with the stress and random-kill tools: a failing randomised run can be replayed from its seed. */
export { prng } from '../../vm-sim/prng.ts';

/** Random integer in [0, n). */
export function randInt(rand: () => number, n: number): number {
  return Math.floor(rand() * n);
}

/** Fisher-Yates shuffle (in place). */
export function shuffle<T>(rand: () => number, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = randInt(rand, i + 1);
    const a = items[i] as T;
    items[i] = items[j] as T;
    items[j] = a;
  }
  return items;
}

/** Yield to the event loop so other "threads" (async tasks) run. */
export function yieldTask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A counting semaphore for async "threads" (sem_post / sem_wait). */
export class Semaphore {
  #count: number;
  #waiters: Array<() => void> = [];

  /** @param initial initial count */
  constructor(initial = 0) {
    this.#count = initial;
  }

  /** sem_post. */
  post(): void {
    const next = this.#waiters.shift();
    if (next !== undefined) next();
    else this.#count++;
  }

  /** sem_wait. */
  async wait(): Promise<void> {
    if (this.#count > 0) {
      this.#count--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }
}

/** Assert that `fn` throws an ErrnoError carrying `errno` (an ioctl failing with it). */
export function expectErrno(fn: () => unknown, errno: number): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ErrnoError);
  expect((caught as ErrnoError).errno).toBe(errno);
}
