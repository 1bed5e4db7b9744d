/**
 * Many concurrent exports from one VM: sim.exportMany allocates `count`
 * small buffers and exports each to one domain, keeping up to `window`
 * exports in flight; they stay exported (concurrently live) until
 * sim.unexportMany unexports them all, waits until each is released, and
 * frees the buffers. Progress events let the launcher show long runs.
 */
import type { DmaBuf } from '../../../src/dmabuf/dma-buf.ts';
import type { Hid } from '../../../src/hyper-dmabuf/index.ts';
import { argInt } from '../commands/args.ts';
import type { CommandHandler, VmContext } from '../commands/commands.ts';
import { simState } from './sim-state.ts';

/** Runs fn over 0..count-1 with at most `window` calls pending. Rejects with the first failure, after every started call settled. */
export async function windowed(count: number, window: number, fn: (i: number) => Promise<void>, onProgress: (done: number) => void): Promise<void> {
  let next = 0;
  let done = 0;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (next < count && failure === undefined) {
      const i = next++;
      try {
        await fn(i);
      } catch (e) {
        failure ??= e;
      }
      done++;
      onProgress(done);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(window, count)) }, worker));
  if (failure !== undefined) throw failure;
}

function progress(ctx: VmContext, what: string, total: number): (done: number) => void {
  let last = performance.now();
  return (done) => {
    if (done === total || performance.now() - last >= 500) {
      last = performance.now();
      ctx.emit('progress', { what, done, total });
    }
  };
}

/** The commands. */
export const manyCommands: Record<string, CommandHandler> = {
  /** {to, count, bytes?=4096, window?=256} -> {count, exported, ms, perSecond, live}. */
  'sim.exportMany': async (ctx, args) => {
    const s = simState(ctx);
    const to = argInt(args, 'to');
    const count = argInt(args, 'count');
    const bytes = argInt(args, 'bytes', 4096);
    const bufs: DmaBuf[] = new Array(count);
    const hids: Hid[] = new Array(count);
    const t0 = performance.now();
    try {
      await windowed(count, argInt(args, 'window', 256), async (i) => {
        const buf = s.driver.heap.alloc(bytes);
        bufs[i] = buf;
        hids[i] = await s.driver.exportRemote(buf, to);
      }, progress(ctx, 'exports', count));
    } finally {
      // Whatever was allocated is tracked, so unexportMany can clean up after a partial failure too.
      for (let i = 0; i < count; i++) if (bufs[i]) { s.many.bufs.push(bufs[i]!); if (hids[i]) s.many.hids.push(hids[i]!); }
    }
    const ms = performance.now() - t0;
    return { count, exported: count, ms: Math.round(ms), perSecond: Math.round((count / ms) * 1000), live: s.driver.stats().exporter.byState.exported };
  },

  /** {window?=256, timeoutMs?} -> {unexported, freed, ms, perSecond}: unexports every sim.exportMany export, waits for each release, frees the buffers. */
  'sim.unexportMany': async (ctx, args) => {
    const s = simState(ctx);
    const { bufs, hids } = s.many;
    s.many = { bufs: [], hids: [] };
    const timeoutMs = argInt(args, 'timeoutMs', 60_000);
    const t0 = performance.now();
    await windowed(hids.length, argInt(args, 'window', 256), async (i) => {
      const hid = hids[i]!;
      const outcome = await s.driver.unexport(hid);
      if (outcome === 'unexported') {
        await s.driver.waitReleased(hid, timeoutMs).catch((e: { code?: string }) => { if (e.code !== 'ERR_UNKNOWN_BUFFER') throw e; });
      }
    }, progress(ctx, 'unexports', hids.length));
    for (const b of bufs) await b.put();
    const ms = performance.now() - t0;
    return { unexported: hids.length, freed: bufs.length, ms: Math.round(ms), perSecond: Math.round((hids.length / Math.max(ms, 1e-3)) * 1000) };
  },
};
