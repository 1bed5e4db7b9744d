/**
 * The scale curve: first share (on the newest version and on v1) and steady
 * handoff of buffers from 1 MiB to 1 GiB from high-order chunks, next to
 * one warm memcpy of the same bytes (the trials of all three interleaved).
 * A share's cost follows the pages and runs it maps; a copy's follows the
 * bytes; a handoff's follows neither.
 */
import { median } from '../process/bench/sim-stats.ts';
import { memcpyTrial } from './baselines.ts';
import { closeShare, drainEvents, freeBuffer, interleaved, shareOnce, shareTrial, type BenchContext } from './context.ts';
import { handoffTimes } from './handoff-figures.ts';
import { round, roundAll, type ScaleRow } from './types.ts';

const MiB = 1024 * 1024;

/** One row: shares, memcpy, handoff of one buffer size. */
async function scaleRow(ctx: BenchContext, bytes: number, firstFrame: number): Promise<ScaleRow> {
  const { newest, v1 } = ctx;
  const { scaleTrials, scaleRoundTrips } = ctx.config;
  // Not filled: a share maps pages whatever they hold, and filling 1 GiB twice would cost more than the row.
  const a = await newest.exporter.call<{ buf: number; runs: number; nents: number }>('dmabuf.alloc', { bytes }, 600_000);
  const b = await v1.exporter.call<{ buf: number }>('dmabuf.alloc', { bytes }, 600_000);
  try {
    const [shareNew, shareV1, memcpy] = await interleaved(scaleTrials, [shareTrial(ctx, newest, a.buf), shareTrial(ctx, v1, b.buf), memcpyTrial(newest.exporter, a.buf)]);
    await drainEvents(newest.importer);
    const share = await shareOnce(ctx, a.buf, [newest.importer]);
    const handoff = await handoffTimes(ctx, { hid: share.hids[0]!, buf: a.buf }, scaleRoundTrips, firstFrame);
    await closeShare(share, [newest.importer]);
    const toMs = (us: number[]): number[] => us.map((x) => x / 1000);
    return {
      bytes, pages: Math.ceil(bytes / 4096), runs: a.runs,
      shareMs: round(median(shareNew) / 1000), shareSamples: roundAll(toMs(shareNew)),
      shareV1Ms: round(median(shareV1) / 1000), shareV1Samples: roundAll(toMs(shareV1)),
      memcpyMs: round(median(memcpy) / 1000), memcpySamples: roundAll(toMs(memcpy)),
      handoffUs: round(median(handoff)), handoffSamples: roundAll(handoff),
    };
  } finally {
    await freeBuffer(ctx, a.buf, newest.exporter);
    await freeBuffer(ctx, b.buf, v1.exporter);
  }
}

/** Every size of the scale curve, smallest first. */
export async function scaleCurve(ctx: BenchContext): Promise<ScaleRow[]> {
  const rows: ScaleRow[] = [];
  let frame = 1;
  for (const bytes of ctx.config.scaleSizes) {
    ctx.log(`scale curve: ${bytes / MiB} MiB, ${ctx.config.scaleTrials} first shares on v${ctx.newest.version} and v1, memcpy, ${ctx.config.scaleRoundTrips} handoffs`);
    rows.push(await scaleRow(ctx, bytes, frame));
    frame += ctx.config.scaleRoundTrips + 20;
  }
  return rows;
}
