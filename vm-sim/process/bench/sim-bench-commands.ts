/**
 * Timed loops for the benchmarks (vm-sim/bench), run inside the VMs so
 * that the launcher's IPC is never part of a measurement. Every time is in
 * microseconds on the shared trace clock (performance.timeOrigin +
 * performance.now()), so a start taken in one VM and an end taken in
 * another can be subtracted.
 *
 *   bench.echo {dst, bytes, iterations, warmup}        sequential ECHO round trips -> samples
 *   bench.ping {iterations, warmup}                    sequential PING round trips to the backend -> samples
 *   bench.handoff {to, hid, buf, iterations, warmup, check}  sequential SIM_FRAME_HANDOFF round trips -> samples
 *                                                      (the stamp of each frame is drawn into buf, untimed, before its handoff)
 *   bench.frameSizes {to, hid}                         encoded sizes of a handoff and of an empty ECHO
 *   bench.shareStart {buf, to}                         t0, then starts the export (to one domain, or to several at once),
 *                                                      answered at once -> {t0}
 *   bench.shareEnd {}                                  the started export's ids once it completed, or its failure -> {hids}
 *   bench.importNext {timeoutMs, sync?}                next NEW_IMPORT, open an fd (remote sync async unless 'ack'), vmap -> {t1, hid, fd}
 *   bench.mapImported {hid, iterations}                opening the first fd (EXPORT_FD and the map), each followed by the
 *                                                      addon's mapPages of the same frames; then as many of those
 *                                                      direct maps back to back -> samples, direct, directWarm, frames, runs
 *   bench.version {}                                   the protocol version this VM's session negotiated -> {version}
 */
import { closeSync, openSync } from 'node:fs';
import { encodeFrame } from '../../../protocol/codec.ts';
import { ECHO, PING } from '../../../protocol/messages/session.ts';
import { SIM_FRAME_HANDOFF, FRAME_CHECKS, type FrameCheck } from '../../../protocol/messages/sim.ts';
import { nativeMem } from '../../../src/memory/native.ts';
import { formatHid, hidKey } from '../../../src/hyper-dmabuf/index.ts';
import { nowUs } from '../../trace/clock.ts';
import { argInt } from '../commands/args.ts';
import type { CommandHandler } from '../commands/commands.ts';
import { drawStampedFrame, wordsOf } from '../../../workloads/frame-pattern.ts';
import { argHid, fdOfHid, simState, viewOf } from '../sim/sim-state.ts';

async function timed(iterations: number, warmup: number, fn: () => Promise<unknown>): Promise<Float64Array> {
  for (let i = 0; i < warmup; i++) await fn();
  const samples = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const t0 = nowUs();
    await fn();
    samples[i] = nowUs() - t0;
  }
  return samples;
}

/** The commands. */
export const simBenchCommands: Record<string, CommandHandler> = {
  'bench.version': (ctx) => ({ version: ctx.kernel.hv.version }),

  'bench.echo': async (ctx, args) => {
    const dst = argInt(args, 'dst');
    const payload = new Uint8Array(argInt(args, 'bytes'));
    const samples = await timed(argInt(args, 'iterations', 200), argInt(args, 'warmup', 20), () => ctx.kernel.hv.peerRequest(ECHO, dst, { payload }));
    return { samples };
  },

  'bench.ping': async (ctx, args) => {
    const samples = await timed(argInt(args, 'iterations', 200), argInt(args, 'warmup', 20), () => ctx.kernel.hv.call(PING, { nonce: 1 }));
    return { samples };
  },

  'bench.handoff': async (ctx, args) => {
    const s = simState(ctx);
    const to = argInt(args, 'to');
    const hid = argHid(args);
    const words = wordsOf(await viewOf(s.stores.bufs.get(args.buf)));
    const check = (typeof args.check === 'string' && (FRAME_CHECKS as readonly string[]).includes(args.check) ? args.check : 'stamp') as FrameCheck;
    let frame = argInt(args, 'firstFrame', 1);
    const one = async (): Promise<number> => {
      drawStampedFrame(words, frame, 'stamp');
      const t0 = nowUs();
      const r = await ctx.kernel.hv.peerRequest(SIM_FRAME_HANDOFF, to, { hid, frame, check });
      const us = nowUs() - t0;
      if (!r.ok) throw Object.assign(new Error(`handoff of frame ${frame} failed its check at byte ${r.badOffset}`), { code: 'ERR_INTERNAL' });
      frame++;
      return us;
    };
    for (let i = 0; i < argInt(args, 'warmup', 20); i++) await one();
    const samples = new Float64Array(argInt(args, 'iterations', 200));
    for (let i = 0; i < samples.length; i++) samples[i] = await one();
    return { samples };
  },

  'bench.frameSizes': (ctx, args) => {
    const to = argInt(args, 'to');
    const hid = argHid(args);
    const v = ctx.kernel.hv.version;
    const id = 1000;
    const handoff = encodeFrame({ v, kind: 'req', type: SIM_FRAME_HANDOFF.type, id, dst: to, body: { hid, frame: 1000, check: 'stamp' } }).byteLength;
    const emptyEcho = encodeFrame({ v, kind: 'req', type: ECHO.type, id, dst: to, body: { payload: new Uint8Array(0) } }).byteLength;
    // ECHO payloads under 256 bytes take a 2-byte bin header, as the empty one does.
    return { handoffFrameBytes: handoff, emptyEchoFrameBytes: emptyEcho, echoPayloadForSameSize: Math.max(0, handoff - emptyEcho) };
  },

  'bench.shareStart': (ctx, args) => {
    const s = simState(ctx);
    if (s.pendingShare) throw Object.assign(new Error('a share is already started: end it with bench.shareEnd first'), { code: 'ERR_STATE' });
    const held = s.stores.bufs.get(args.buf);
    const targets = Array.isArray(args.to) ? args.to.map((_, i) => argInt(args.to as unknown as Record<string, unknown>, String(i))) : [argInt(args, 'to')];
    const t0 = nowUs();
    // Kept settled, never rejected: bench.shareEnd gives the ids or throws the failure.
    s.pendingShare = Promise.all(targets.map((to) => s.driver.exportRemote(held.buf, to))).then(
      (hids) => ({ ok: true as const, hids }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    // Answered at once: the launcher is not woken while the share is under way (its wake-up took the CPU
    // the share needs: on two cores, the first share measured 15-25% slower with the answer sent after the export).
    return { t0 };
  },

  'bench.shareEnd': async (ctx) => {
    const s = simState(ctx);
    const exporting = s.pendingShare;
    if (!exporting) throw Object.assign(new Error('no share started (bench.shareStart)'), { code: 'ERR_STATE' });
    s.pendingShare = undefined;
    const outcome = await exporting;
    if (!outcome.ok) throw outcome.error;
    return { hids: outcome.hids.map(hidKey) };
  },

  'bench.importNext': async (ctx, args) => {
    const s = simState(ctx);
    const ev = await s.driver.readEvent({ timeoutMs: argInt(args, 'timeoutMs', 30_000) });
    const t0 = nowUs();
    // Remote sync of this fd's operations is not acknowledged (the original's only mode): the share
    // ends when the pages are mapped and the view is usable, not when the exporter has mirrored the vmap.
    const fd = await s.driver.exportFd(ev.hid, { sync: args.sync === 'ack' ? 'ack' : 'async' });
    const view = await fd.vmap();
    const t1 = nowUs();
    // Kept in the dmabuf module's store: released with dmabuf.release like any fd.
    const id = s.stores.fds.add({ buf: fd, view });
    return { t1, eventAt: t0, hid: hidKey(ev.hid), fd: id, bytes: view.byteLength };
  },

  'bench.mapImported': async (ctx, args) => {
    const s = simState(ctx);
    const hid = argHid(args);
    if (fdOfHid(s, hidKey(hid))) throw Object.assign(new Error(`${formatHid(hid)} is open here: release it first so that each open maps afresh`), { code: 'ERR_STATE' });
    const iterations = argInt(args, 'iterations', 10);
    const samples = new Float64Array(iterations);
    const direct = new Float64Array(iterations);
    const directWarm = new Float64Array(iterations);
    // The frames of the first map and the exporter's RAM file they are in, for the direct maps.
    let base: { frames: Uint32Array; ram: number } | undefined;
    try {
      for (let i = 0; i < iterations; i++) {
        const t0 = nowUs();
        const fd = await s.driver.exportFd(hid);
        samples[i] = nowUs() - t0;
        const m = s.driver.importer.find(hid)?.mapping;
        if (m) base ??= { frames: Uint32Array.from(m.frames), ram: openSync(m.ramPath, 'r') };
        await fd.put();
        if (!base) throw Object.assign(new Error(`${formatHid(hid)} had no mapping while its fd was open`), { code: 'ERR_INTERNAL' });
        // A barrier: the exporter has handled this fd's release (sent before it, same route) when the
        // next map starts, so that no trial pays for the one before.
        await ctx.kernel.hv.peerRequest(ECHO, hid.dom, { payload: new Uint8Array(0) });
        // The baseline right after, in the same state of the machine: the same frames mapped directly.
        direct[i] = timedDirectMap(base);
      }
      // Reported beside it: the same direct map in a tight loop of its own, as warm as it gets.
      for (let i = 0; base && i < iterations; i++) directWarm[i] = timedDirectMap(base);
    } finally {
      if (base) closeSync(base.ram);
    }
    const frames = base?.frames ?? new Uint32Array(0);
    return { samples, direct, directWarm, frames: frames.length, runs: nativeMem.countRuns(frames) };
  },
};

/** µs to map `frames` of the RAM file open as `ram` with the addon (then unmapped, untimed). */
function timedDirectMap(base: { frames: Uint32Array; ram: number }): number {
  const t0 = nowUs();
  const view = nativeMem.mapPages(base.ram, base.frames, false);
  const us = nowUs() - t0;
  nativeMem.unmap(view);
  return us;
}
