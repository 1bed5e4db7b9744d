/**
 * Figures of handing a buffer that is already shared:
 *   - one handoff round trip (SIM_FRAME_HANDOFF, the receiver checks the
 *     frame's stamp through its mapping and answers) against a bare ECHO of
 *     a frame of the same size on the same path;
 *   - frames per second with triple buffering (three buffers, up to three
 *     handoffs outstanding) at a small and a large buffer size.
 */
import { median } from '../process/bench/sim-stats.ts';
import { allocBuffer, closeShare, drainEvents, freeBuffer, shareOnce, type BenchContext, type Share } from './context.ts';
import { CpuMeter } from './cpu.ts';
import { pairedSpread, result, type BenchResult } from './types.ts';

const LONG = 600_000;
const MiB = 1024 * 1024;

/** Sequential handoff round trips of a shared buffer (the stamp drawn before each, checked through the mapping), µs each. */
export async function handoffTimes(ctx: BenchContext, share: { hid: string; buf: number }, iterations: number, firstFrame: number): Promise<number[]> {
  const h = await ctx.exporter.call<{ samples: Float64Array }>('bench.handoff', { to: ctx.importer.domid, hid: share.hid, buf: share.buf, iterations, warmup: 20, check: 'stamp', firstFrame }, LONG);
  return Array.from(h.samples);
}

/** Steady-state handoff against ECHO of the same frame size. */
export async function handoffFigure(ctx: BenchContext): Promise<BenchResult[]> {
  const { roundTrips, roundTripTrials } = ctx.config;
  ctx.log(`steady handoff vs ECHO: ${roundTripTrials} x ${roundTrips} round trips each`);
  await drainEvents(ctx.importer);
  const a = await allocBuffer(ctx, 1920 * 1080 * 4);
  const share = await shareOnce(ctx, a.buf, [ctx.importer]);
  const hid = share.hids[0]!;
  const sizes = await ctx.exporter.call<{ handoffFrameBytes: number; echoPayloadForSameSize: number }>('bench.frameSizes', { to: ctx.importer.domid, hid });
  const handoff: number[] = [];
  const echo: number[] = [];
  const all: [number[], number[]] = [[], []];
  // What the three processes on the path spend per round trip, on their main threads: load inflates it far less than wall time.
  const pids = [ctx.exporter.pid, ctx.run.hv.pid, ctx.importer.pid];
  const cpu = [new CpuMeter(pids), new CpuMeter(pids)];
  // Alternated, so that a slow patch of the machine hits both alike.
  for (let t = 0; t < roundTripTrials; t++) {
    const h = await cpu[0]!.measure(() => handoffTimes(ctx, { hid, buf: a.buf }, roundTrips, 1 + t * (roundTrips + 20)));
    const e = await cpu[1]!.measure(() => ctx.exporter.call<{ samples: Float64Array }>('bench.echo', { dst: ctx.importer.domid, bytes: sizes.echoPayloadForSameSize, iterations: roundTrips, warmup: 20 }, LONG));
    handoff.push(median(h));
    echo.push(median(e.samples));
    all[0].push(...h);
    all[1].push(...e.samples);
  }
  await closeShare(share, [ctx.importer]);
  await freeBuffer(ctx, a.buf);
  const value = median(handoff);
  const base = median(echo);
  // Each trial's warm-up round trips ran inside the measured call too.
  const ops = roundTripTrials * (roundTrips + 20);
  const [hCpu, eCpu] = [cpu[0]!.perOp(ops), cpu[1]!.perOp(ops)];
  const sum = (xs: number[]): string => xs.reduce((x, y) => x + y, 0).toFixed(1);
  const cpuNote = hCpu && eCpu
    ? `; main-thread CPU per round trip (exporter + hv + importer): handoff ${sum(hCpu)} µs (${hCpu.join(' + ')}), round trip ${sum(eCpu)} µs (${eCpu.join(' + ')})`
    : '';
  return [result({
    id: 'handoff-vs-round-trip', name: 'steady-state handoff of a shared 1080p buffer (round trip, stamp checked through the mapping)', value, unit: 'µs', trials: roundTripTrials * roundTrips, version: ctx.newest.version,
    baseline: base, baselineName: `bare round trip on the same path: ECHO of a ${sizes.handoffFrameBytes}-byte frame, exporter VM -> hv -> importer VM and back`,
    ratio: value / base, ratioMeaning: 'handoff / round trip (lower is better)', target: { op: '<=', value: 1.2, source: 'issue' },
    note: `the physical floor of a handoff is one round trip; median of ${roundTripTrials} trial medians, each of ${roundTrips} sequential round trips, trials alternated with the baseline's${cpuNote}`,
    samples: { value: all[0], baseline: all[1], ...(hCpu && eCpu ? { parts: { handoffCpuUsPerProcess: hCpu, roundTripCpuUsPerProcess: eCpu } } : {}) },
    ratioSpread: pairedSpread(handoff, echo, 'value/baseline'),
  })];
}

/** Three buffers of `bytes`, exported to the importer and opened there. */
async function tripleSet(ctx: BenchContext, bytes: number): Promise<{ buffers: Array<{ buf: number; hid: string }>; shares: Share[] }> {
  await drainEvents(ctx.importer);
  const buffers: Array<{ buf: number; hid: string }> = [];
  const shares: Share[] = [];
  for (let i = 0; i < 3; i++) {
    const { buf } = await ctx.exporter.call<{ buf: number }>('dmabuf.alloc', { bytes }, LONG);
    const share = await shareOnce(ctx, buf, [ctx.importer]);
    shares.push(share);
    buffers.push({ buf, hid: share.hids[0]! });
  }
  return { buffers, shares };
}

/** Triple-buffering throughput at two sizes, trials alternated so that the machine's load hits both alike. */
export async function throughputFigure(ctx: BenchContext): Promise<BenchResult[]> {
  const [small, large] = ctx.config.throughputSizes;
  const { throughputFrames, throughputTrials } = ctx.config;
  ctx.log(`triple buffering: ${small / MiB} MiB and ${large / MiB} MiB buffers, ${throughputTrials} alternated trials of ${throughputFrames} frames each`);
  const sets = [await tripleSet(ctx, small), await tripleSet(ctx, large)];
  const fps: [number[], number[]] = [[], []];
  let frame = 1;
  for (let t = -1; t < throughputTrials; t++) {
    // ABBA order: neither size always runs first after the other's trial.
    for (const k of t % 2 === 0 ? [0, 1] : [1, 0]) {
      const r = await ctx.exporter.call<{ framesPerSecond: number; failed: number }>('sim.renderLoop', {
        to: ctx.importer.domid, buffers: sets[k]!.buffers, frames: throughputFrames, firstFrame: frame, draw: 'stamp', check: 'stamp', inFlight: 3, progressMs: 600_000,
      }, LONG);
      frame += throughputFrames;
      if (r.failed > 0) throw new Error(`${r.failed} frames failed their check`);
      // The first round warms both up (first touch of the pages, JIT).
      if (t >= 0) fps[k]!.push(r.framesPerSecond);
    }
  }
  for (const set of sets) {
    for (const s of set.shares) await closeShare(s, [ctx.importer]);
    for (const b of set.buffers) await freeBuffer(ctx, b.buf);
  }
  const fpsSmall = median(fps[0]);
  const fpsLarge = median(fps[1]);
  return [result({
    id: 'triple-buffering', name: `handoff throughput, triple buffering, ${large / MiB} MiB buffers`, value: fpsLarge, unit: 'frames/s', trials: throughputTrials, version: ctx.newest.version,
    baseline: fpsSmall, baselineName: `the same with ${small / MiB} MiB buffers`,
    ratio: fpsSmall / fpsLarge, ratioMeaning: `frames/s at ${small / MiB} MiB / at ${large / MiB} MiB (1 = cost does not grow with size)`,
    target: { op: 'within', value: 1.2, source: 'issue' },
    note: 'each frame: the stamp drawn in the exporter, handed off, the stamp checked through the mapping in the importer, handed back; up to 3 outstanding',
    samples: { value: fps[1], baseline: fps[0] },
    ratioSpread: pairedSpread(fps[1], fps[0], 'baseline/value'),
  })];
}
