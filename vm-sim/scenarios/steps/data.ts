/**
 * Steps that touch the pixels: write and verify a pattern (dmabuf.fill and
 * dmabuf.check through the exporter's own pages, dmabuf.fdFill and
 * dmabuf.fdCheck through the importer's mapping), and hand frames off
 * (sim.renderLoop in the sender; the receiver checks each frame through its
 * mapping when SIM_FRAME_HANDOFF arrives).
 */
import type { RenderLoopResult } from '../../process/sim/sim-render.ts';
import { formatBytes, formatUs } from '../units.ts';
import type { ScenarioContext } from '../context.ts';
import type { HandoffStep, VerifyStep, WriteStep } from '../types.ts';
import type { StepExecutor } from './executor.ts';
import { verifyInOutside } from './outside.ts';
import { badValue, int } from './values.ts';

function where(ctx: ScenarioContext, label: string, domain: string): { exporter: boolean; id: number } {
  const rec = ctx.buffer(label);
  if (rec.exporter === domain) return { exporter: true, id: rec.buf };
  const fd = rec.fds.get(domain);
  if (fd === undefined) throw badValue(`${domain} neither exported "${label}" nor has an fd open on it`);
  return { exporter: false, id: fd };
}

/** Writes pattern `seed` over every byte. */
export const writeStep: StepExecutor<WriteStep> = async (ctx, s, timeoutMs) => {
  const w = where(ctx, s.buffer, s.in);
  const seed = int(s.seed, 'seed');
  await ctx.vm(s.in).call(w.exporter ? 'dmabuf.fill' : 'dmabuf.fdFill', w.exporter ? { buf: w.id, seed } : { fd: w.id, seed }, timeoutMs);
  const size = ctx.buffer(s.buffer).size;
  return { result: { bytes: size }, detail: `seed ${seed} over ${formatBytes(size)}${w.exporter ? '' : ', through the mapping'}` };
};

/** Checks pattern `seed` over every byte; fails on the first wrong byte (unless the step expects that). */
export const verifyStep: StepExecutor<VerifyStep> = async (ctx, s, timeoutMs) => {
  const outside = ctx.outside(s.in);
  if (outside) return verifyInOutside(ctx, outside, s, timeoutMs);
  const w = where(ctx, s.buffer, s.in);
  const seed = int(s.seed, 'seed');
  const r = await ctx.vm(s.in).call<{ ok: boolean; firstBad: number }>(w.exporter ? 'dmabuf.check' : 'dmabuf.fdCheck', w.exporter ? { buf: w.id, seed } : { fd: w.id, seed }, timeoutMs);
  if (!r.ok && s.expect === undefined) throw Object.assign(new Error(`${s.buffer} in ${s.in}: byte ${r.firstBad} differs from pattern ${seed}`), { code: 'ERR_VERIFY' });
  const size = ctx.buffer(s.buffer).size;
  if (r.ok && !w.exporter) ctx.count('bytesVerifiedThroughMappings', size);
  return { result: r, detail: `seed ${seed} ${r.ok ? 'matches' : `differs at byte ${r.firstBad}`} over ${formatBytes(size)}${w.exporter ? '' : ', read through the mapping (no copy)'}` };
};

/** Hands frames from `from` to `to` through the buffers shared between them. */
export const handoffStep: StepExecutor<HandoffStep> = async (ctx, s, timeoutMs) => {
  const to = ctx.vm(s.to);
  const labels = s.buffers ?? [...ctx.buffers.values()].filter((b) => b.exporter === s.from && b.hids.has(s.to) && b.fds.has(s.to)).map((b) => b.label);
  if (labels.length === 0) throw badValue(`${s.from} shares no imported buffer with ${s.to}`);
  const buffers = labels.map((l) => ({ buf: ctx.buffer(l).buf, hid: ctx.hid(l, s.to) }));
  const frames = int(s.frames, 'frames');
  const r = await ctx.vm(s.from).call<RenderLoopResult>('sim.renderLoop', {
    to: to.domid, buffers, frames, draw: s.draw ?? 'full', check: s.check ?? 'full', inFlight: int(s.inFlight, 'inFlight', 1),
  }, timeoutMs);
  const size = ctx.buffer(labels[0]!).size;
  ctx.count('framesHandedOff', r.frames);
  ctx.count('framesVerified', r.verified);
  ctx.count('frameBytesHandedOff', r.frames * size);
  ctx.count('bytesCheckedThroughMappings', r.bytesChecked);
  ctx.stat('handoff', {
    frames: r.frames, verified: r.verified, failed: r.failed, buffers: labels.length, check: s.check ?? 'full',
    latencyUs: r.latencyUs, checkUs: r.checkUs, drawUs: r.drawUs, framesPerSecond: r.framesPerSecond, elapsedMs: r.elapsedMs,
  });
  if (r.failed > 0 && s.expect === undefined) {
    throw Object.assign(new Error(`${r.failed} of ${r.frames} frames failed the check (first: frame ${r.firstFailure?.frame} at byte ${r.firstFailure?.badOffset})`), { code: 'ERR_VERIFY' });
  }
  return {
    result: r as unknown as Record<string, unknown>,
    detail: `${r.verified}/${r.frames} verified through ${labels.length} buffer(s); handoff p50 ${formatUs(r.latencyUs.p50)}, p99 ${formatUs(r.latencyUs.p99)}; ${r.framesPerSecond} frames/s`,
  };
};
