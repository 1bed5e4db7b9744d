/**
 * The render VM's frame loop: draw frame n into buffer n mod B, hand it to
 * the consumer (SIM_FRAME_HANDOFF), and reuse a buffer only once it has
 * been handed back. With inFlight 1 each frame waits for the previous
 * handback (the latency of one handoff is then exactly its round trip);
 * with inFlight = B the consumer may hold every buffer (triple buffering at
 * B = 3), which is how throughput is measured. Runs on the frame-stream
 * engine (workloads/frame-loop.ts).
 */
import type { FrameCheck } from '../../../protocol/messages/sim.ts';
import { SIM_FRAME_HANDOFF } from '../../../protocol/messages/sim.ts';
import type { Hid } from '../../../src/hyper-dmabuf/index.ts';
import { nowUs } from '../../trace/clock.ts';
import { childTrace } from '../../trace/child-trace.ts';
import type { VmContext } from '../commands/commands.ts';
import { runFrameLoop } from '../../../workloads/frame-loop.ts';
import { drawStampedFrame, wordsOf } from '../../../workloads/frame-pattern.ts';
import { summarize, type SampleSummary } from '../bench/sim-stats.ts';
import { viewOf, type HeldBuf } from './sim-state.ts';

/** One buffer of the loop: where to draw (a dmabuf module buffer), and its id at the consumer. */
export interface LoopBuffer {
  readonly held: HeldBuf;
  /** For traces. */
  readonly label: string;
  readonly hid: Hid;
}

/** Options of a loop. */
export interface RenderLoopOptions {
  /** Consumer domain. */
  readonly to: number;
  readonly frames: number;
  /** First frame number (default 1). */
  readonly firstFrame: number;
  readonly draw: 'full' | 'stamp' | 'none';
  readonly check: FrameCheck;
  /** Handoffs outstanding at most (1..buffers). */
  readonly inFlight: number;
  /** Emit a 'progress' event at least this often (ms). */
  readonly progressMs: number;
  /** Keep every latency sample in the result (benchmarks). */
  readonly keepSamples: boolean;
}

/** What a loop reports. */
export interface RenderLoopResult {
  frames: number;
  verified: number;
  failed: number;
  firstFailure: { frame: number; badOffset: number } | null;
  /** Handoff to handback, microseconds, as the render VM saw it. */
  latencyUs: SampleSummary;
  /** Consumer's check time per frame, microseconds. */
  checkUs: SampleSummary;
  drawUs: SampleSummary;
  elapsedMs: number;
  framesPerSecond: number;
  bytesDrawn: number;
  bytesChecked: number;
  samples?: Float64Array;
}

/** Runs the loop; resolves when every frame has been handed back. */
export async function renderLoop(ctx: VmContext, bufs: readonly LoopBuffer[], o: RenderLoopOptions): Promise<RenderLoopResult> {
  const hv = ctx.kernel.hv;
  const trace = childTrace();
  const latency = new Float64Array(o.frames);
  const check = new Float64Array(o.frames);
  const draw = new Float64Array(o.frames);
  let verified = 0;
  let failed = 0;
  let bytesDrawn = 0;
  let bytesChecked = 0;
  let firstFailure: RenderLoopResult['firstFailure'] = null;
  let lastProgress = performance.now();
  const progress = (done: number): void => {
    if (performance.now() - lastProgress < o.progressMs) return;
    lastProgress = performance.now();
    ctx.emit('progress', { what: 'frames', done, total: o.frames });
  };
  // Frame n draws into buffer n mod B; at most inFlight (<= B) handoffs are out, the oldest awaited
  // first, so a buffer is drawn into again only after its handback. A handoff that fails outright
  // (the consumer died, refused...) ends the loop once the others are back.
  const inFlight = Math.max(1, Math.min(o.inFlight, bufs.length));
  const run = await runFrameLoop({ first: 0, frames: o.frames, window: inFlight, drainOnError: true, onFrame: progress }, async (n, send) => {
    const b = bufs[n % bufs.length]!;
    const frame = o.firstFrame + n;
    const t0 = nowUs();
    if (o.draw !== 'none') {
      const view = b.held.view ?? await viewOf(b.held);
      bytesDrawn += drawStampedFrame(wordsOf(view), frame, o.draw);
    }
    const t1 = nowUs();
    draw[n] = t1 - t0;
    if (o.draw === 'full') trace?.span(`draw frame ${frame}`, 'sim', t0, { buffer: b.label });
    const sent = nowUs();
    send(hv.peerRequest(SIM_FRAME_HANDOFF, o.to, { hid: b.hid, frame, check: o.check }).then((r) => {
      latency[n] = nowUs() - sent;
      check[n] = r.checkUs;
      bytesChecked += r.checkedBytes;
      if (r.ok) verified++;
      else {
        failed++;
        firstFailure ??= { frame, badOffset: r.badOffset ?? -1 };
      }
    }), 'handoff');
  });
  if (run.error) throw run.cause;
  const elapsedMs = run.elapsedMs;
  ctx.emit('progress', { what: 'frames', done: o.frames, total: o.frames });
  return {
    frames: o.frames, verified, failed, firstFailure,
    latencyUs: summarize(latency), checkUs: summarize(check), drawUs: summarize(draw),
    elapsedMs: Math.round(elapsedMs * 10) / 10,
    framesPerSecond: Math.round((o.frames / elapsedMs) * 1000 * 10) / 10,
    bytesDrawn, bytesChecked,
    ...(o.keepSamples ? { samples: latency } : {}),
  };
}
