/**
 * Runs asynchronous steps one after another. Each buffer has one, so that
 * messages about the same buffer (an attach then a map, fire-and-forget)
 * take effect in the order they arrived even when a step awaits.
 */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  /** Runs fn after every step queued before it; resolves or rejects with fn's result. */
  run<T>(fn: () => Promise<T> | T): Promise<T> {
    const next = this.tail.then(fn, fn);
    // A failed step must not block the steps after it.
    this.tail = next.catch(() => undefined);
    return next;
  }
}
