/**
 * The one way tests wait for a condition that no event announces (a count
 * in another process's stats, a file gone, a page word written without a
 * message). Where an event exists, await the event instead: the harness's
 * nextEvent (a VM's event), BufferStream.whenFrame, DmabufSync.untilCpuWaited
 * and the like. These re-check the condition every few milliseconds until a
 * deadline; the deadline is a failure bound, never a timing assertion.
 */

/** How to wait. */
export interface WaitOptions {
  /** Milliseconds between checks (default 5). */
  everyMs?: number;
  /** What is waited for, for the failure message. */
  what?: string;
}

/** Resolves whether `condition` held within `ms` (checked at once, then every `everyMs`, and a last time at the deadline). */
export async function holdsWithin(condition: () => boolean | Promise<boolean>, ms: number, opts: WaitOptions = {}): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 5));
  }
  return condition();
}

/** Resolves once `condition` holds; rejects if it does not within `ms` (default 5 s). */
export async function until(condition: () => boolean | Promise<boolean>, ms = 5000, opts: WaitOptions = {}): Promise<void> {
  if (!(await holdsWithin(condition, ms, opts))) throw new Error(`${opts.what ?? 'condition'} not met within ${ms} ms`);
}
