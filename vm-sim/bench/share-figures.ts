/**
 * Figures of sharing a buffer the first time, of mapping one, and of
 * fan-out:
 *   - first share (export, import, map) of 1080p and 4K buffers against
 *     sending the same bytes as ECHO over the same WebSocket path;
 *   - a fully scattered 4K buffer against the floor of mapping its pages
 *     directly with the addon;
 *   - mapping an imported buffer (opening its first fd: EXPORT_FD, the
 *     directory, the batched grant map, the vmap) against the addon mapping
 *     the same pages directly;
 *   - fan-out of one buffer to N importers against N shares one by one.
 */
import { median } from '../process/sim-stats.ts';
import { allocBuffer, closeShare, drainEvents, freeBuffer, medianEcho, medianShare, shareOnce, type BenchContext } from './context.ts';
import { result, type BenchResult } from './types.ts';

const FB_1080P = 1920 * 1080 * 4;
const FB_4K = 3840 * 2160 * 4;
const LONG = 600_000;

/** A mapping of an imported buffer against the addon's direct mapping of the same frames. */
async function mapFigures(ctx: BenchContext, buf: number, label: string, id: string): Promise<{ result: BenchResult; directUs: number }> {
  await drainEvents(ctx.importer);
  const { hid } = await ctx.exporter.call<{ hid: string }>('dmabuf.export', { buf, domid: ctx.importer.domid }, LONG);
  await ctx.importer.call('dmabuf.readEvent', { timeoutMs: 30_000 }, LONG);
  const imported = await ctx.importer.call<{ samples: Float64Array; frames: Uint32Array; ramPath: string }>('bench.mapImported', { hid, iterations: ctx.config.mapIterations }, LONG);
  const direct = await ctx.importer.call<{ samples: Float64Array; runs: number }>('bench.mapDirect', { ramPath: imported.ramPath, frames: imported.frames, iterations: ctx.config.mapIterations }, LONG);
  await ctx.exporter.call('dmabuf.unexport', { hid }, LONG);
  await ctx.exporter.call('dmabuf.waitReleased', { hid, timeoutMs: 60_000 }, LONG);
  const value = median(imported.samples) / 1000;
  const directMs = median(direct.samples) / 1000;
  return {
    directUs: directMs * 1000,
    result: result({
      id, name: `map an imported ${label} buffer vs the addon mapping the same pages`, value, unit: 'ms', trials: ctx.config.mapIterations,
      baseline: directMs, baselineName: `nativeMem.mapPages of the same ${imported.frames.length} frames (${direct.runs} runs)`,
      ratio: value / directMs, ratioMeaning: 'imported / direct (lower is better)', target: { op: '<=', value: 2, source: 'issue' },
      note: 'imported = first fd of an import: EXPORT_FD round trip, directory pages mapped and read, one batched GNTTAB_MAP_GRANT_REF, one vmap',
    }),
  };
}

/** First shares, scattered floor, map figures. */
export async function shareFigures(ctx: BenchContext): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  const { shareTrials } = ctx.config;
  await drainEvents(ctx.importer);

  for (const [id, label, bytes] of [['first-share-1080p', '1080p', FB_1080P], ['first-share-4k', '4K', FB_4K]] as const) {
    ctx.log(`first share ${label}: ${shareTrials} trials, and the ECHO baseline`);
    const a = await allocBuffer(ctx, bytes);
    const share = await medianShare(ctx, a.buf, [ctx.importer], shareTrials) / 1000;
    const echo = await medianEcho(ctx, bytes) / 1000;
    out.push(result({
      id, name: `first share of a ${label} buffer (export, import, map; ${a.runs} runs of pages)`, value: share, unit: 'ms', trials: shareTrials,
      baseline: echo, baselineName: `the same ${bytes} bytes as ECHO chunks of <= 8 MiB, VM -> hv -> VM and back`,
      ratio: echo / share, ratioMeaning: 'ECHO / share: times faster',
      ...(id === 'first-share-4k' ? { target: { op: '>=', value: 20, source: 'issue' } } : {}),
    }));
    if (id === 'first-share-4k') out.push((await mapFigures(ctx, a.buf, '4K (high-order chunks)', 'map-4k')).result);
    await freeBuffer(ctx, a.buf);
  }

  ctx.log(`first share 4K, fully scattered pages: ${shareTrials} trials, and the floor`);
  const s = await allocBuffer(ctx, FB_4K, true);
  const scattered = await medianShare(ctx, s.buf, [ctx.importer], shareTrials) / 1000;
  const map = await mapFigures(ctx, s.buf, '4K (fully scattered)', 'map-4k-scattered');
  const floorMs = map.directUs / 1000;
  out.push(result({
    id: 'first-share-4k-scattered', name: `first share of a fully scattered 4K buffer (${s.runs} runs: one mapping per page)`, value: scattered, unit: 'ms', trials: shareTrials,
    baseline: floorMs, baselineName: 'floor: the addon mapping the same scattered pages directly',
    ratio: scattered / floorMs, ratioMeaning: 'share / floor (the issue asks to report it)',
  }));
  out.push(map.result);
  await freeBuffer(ctx, s.buf);
  return out;
}

/** Fan-out of one 1080p buffer to every fan importer at once, against that many shares one by one. */
export async function fanOutFigure(ctx: BenchContext): Promise<BenchResult[]> {
  const n = ctx.fans.length;
  ctx.log(`fan-out to ${n} importers: ${ctx.config.fanOutTrials} trials, and one importer`);
  for (const f of ctx.fans) await drainEvents(f);
  const a = await allocBuffer(ctx, FB_1080P);
  const one = await medianShare(ctx, a.buf, [ctx.importer], ctx.config.fanOutTrials) / 1000;
  const times: number[] = [];
  for (let t = -1; t < ctx.config.fanOutTrials; t++) {
    const s = await shareOnce(ctx, a.buf, ctx.fans);
    await closeShare(ctx, s, ctx.fans);
    if (t >= 0) times.push(s.us);
  }
  await freeBuffer(ctx, a.buf);
  const all = median(times) / 1000;
  return [result({
    id: 'fan-out', name: `fan-out of a 1080p buffer to ${n} importers (all mapped)`, value: all, unit: 'ms', trials: ctx.config.fanOutTrials,
    baseline: n * one, baselineName: `${n} x one first share (${one.toFixed(2)} ms each)`,
    ratio: all / (n * one), ratioMeaning: `fan-out / (${n} x one share): below 1, the importers worked in parallel`,
    note: 'reported only: the issue sets no target. All importers map through the one backend process, and the machine has only so many cores for its VMs',
  })];
}
