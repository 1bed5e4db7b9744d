/**
 * The simulator's programs in a VM (module 'sim'), next to the driver's own
 * commands (dmabuf-commands.ts): scenarios export, import, release and
 * unexport with dmabuf.*, and use these for what a render VM and a
 * compositor VM do with the shared pages. Buffers and fds are the dmabuf
 * module's ids (`buf` from dmabuf.alloc, `fd` from dmabuf.exportFd).
 *
 *   sim.draw {buf|fd, frame, mode?}          draw a frame-numbered pattern (own pages, or an rw import)
 *   sim.verify {buf|fd|hid, frame, mode?}    check it, through own pages or the import's mapping
 *   sim.renderLoop {to, buffers:[{buf, hid}], frames, draw?, check?, inFlight?}  frames handed off and back
 *   sim.exportMany {to, count} / sim.unexportMany   many concurrent exports, timed in the VM
 *   sim.framebufferPriv {width, height, stride?, format?} -> {priv}   private data of a framebuffer
 *   sim.stats                                driver, kernel, copies and handoff counters
 *   bench.*                                  timed loops (sim-bench-commands.ts)
 *
 * It answers SIM_FRAME_HANDOFF (sim-consumer.ts), and counts what this VM
 * sends in copies (ECHO, GNTTAB_COPY) for the run's "bytes copied".
 */
import { FRAME_CHECKS, SIM_FRAME_HANDOFF, type FrameCheck } from '../../../protocol/messages/sim.ts';
import { formatHid, hidKey } from '../../../src/hyper-dmabuf/index.ts';
import { nowUs } from '../../trace/clock.ts';
import { childTrace } from '../../trace/child-trace.ts';
import { argBool, argInt } from '../commands/args.ts';
import type { CommandHandler, VmContext, VmModule } from '../commands/commands.ts';
import { simBenchCommands } from '../bench/sim-bench-commands.ts';
import { closeWs, installCopyHandler, simBenchCopyCommands } from '../bench/sim-bench-copy.ts';
import { handleHandoff } from './sim-consumer.ts';
import { checkStampedFrame, drawStampedFrame, wordsOf } from '../../../workloads/frame-pattern.ts';
import { encodeFramebufferInfo, FORMATS } from './framebuffer-info.ts';
import { manyCommands } from './sim-many.ts';
import { renderLoop, type LoopBuffer } from './sim-render.ts';
import { argHid, attachToDriver, countCopies, fdOfHid, simState, viewOf, type HeldBuf, type SimState } from './sim-state.ts';

function bad(message: string, code = 'ERR_BAD_ARGUMENT'): Error {
  return Object.assign(new Error(message), { code });
}

function oneOf<T extends string>(args: Record<string, unknown>, name: string, dflt: T, allowed: readonly T[]): T {
  const v = args[name] ?? dflt;
  if (typeof v !== 'string' || !allowed.includes(v as T)) throw bad(`argument ${name} must be one of ${allowed.join(', ')}`);
  return v as T;
}

/** The buffer (own pages) or fd (an import's mapping) a command names. */
function target(s: SimState, args: Record<string, unknown>): { held: HeldBuf; what: string; imported: boolean } {
  if (args.buf !== undefined) return { held: s.stores.bufs.get(args.buf), what: `buf ${String(args.buf)}`, imported: false };
  if (args.fd !== undefined) return { held: s.stores.fds.get(args.fd), what: `fd ${String(args.fd)}`, imported: true };
  if (args.hid !== undefined) {
    const hid = argHid(args);
    const held = fdOfHid(s, hidKey(hid));
    if (!held) throw bad(`no open fd on an import of ${formatHid(hid)}`, 'ERR_UNKNOWN_BUFFER');
    return { held, what: formatHid(hid), imported: true };
  }
  throw bad('name a buffer (buf), an fd (fd) or an import (hid)');
}

const commands: Record<string, CommandHandler> = {
  'sim.draw': async (ctx, args) => {
    const s = simState(ctx);
    const t = target(s, args);
    // A write through a read-only mapping faults in hardware and kills the VM: only on purpose.
    if (t.imported && (t.held.buf.priv as { entry?: { access?: string } }).entry?.access !== 'rw' && args.fault !== true) {
      throw bad(`${t.what} is imported read-only (pass fault: true to write anyway and take the fault)`, 'ERR_NOT_PERMITTED');
    }
    const view = await viewOf(t.held);
    const t0 = nowUs();
    const bytes = drawStampedFrame(wordsOf(view), argInt(args, 'frame'), oneOf(args, 'mode', 'full', ['full', 'stamp'] as const));
    childTrace()?.span(`draw ${t.what}`, 'sim', t0, { bytes });
    return { bytes, us: Math.round(nowUs() - t0) };
  },

  'sim.verify': async (ctx, args) => {
    const s = simState(ctx);
    const t = target(s, args);
    const view = await viewOf(t.held);
    if (view.byteLength === 0) throw bad(`${t.what} is no longer mapped (its view is detached)`, 'ERR_STATE');
    const t0 = nowUs();
    const r = checkStampedFrame(wordsOf(view), argInt(args, 'frame'), oneOf(args, 'mode', 'full', FRAME_CHECKS) as FrameCheck);
    childTrace()?.span(`verify ${t.what}`, 'sim', t0, { bytes: r.checkedBytes, ok: r.ok });
    return { ...r, us: Math.round(nowUs() - t0) };
  },

  'sim.renderLoop': async (ctx, args) => {
    const s = simState(ctx);
    const list = args.buffers;
    if (!Array.isArray(list) || list.length === 0) throw bad('argument buffers must be a non-empty array of {buf, hid}');
    const bufs: LoopBuffer[] = list.map((x: Record<string, unknown>) => ({ held: s.stores.bufs.get(x.buf), label: `buf ${String(x.buf)}`, hid: argHid(x) }));
    return renderLoop(ctx, bufs, {
      to: argInt(args, 'to'), frames: argInt(args, 'frames'), firstFrame: argInt(args, 'firstFrame', 1),
      draw: oneOf(args, 'draw', 'full', ['full', 'stamp', 'none'] as const),
      check: oneOf(args, 'check', 'full', FRAME_CHECKS) as FrameCheck,
      inFlight: argInt(args, 'inFlight', 1), progressMs: argInt(args, 'progressMs', 500), keepSamples: argBool(args, 'keepSamples', false),
    });
  },

  'sim.framebufferPriv': (_ctx, args) => {
    const width = argInt(args, 'width');
    const format = typeof args.format === 'string' ? args.format : 'RGBA8888';
    const fmt = FORMATS[format];
    const priv = encodeFramebufferInfo({ width, height: argInt(args, 'height'), stride: argInt(args, 'stride', width * (fmt?.bpp ?? 4)), format: fmt?.fourcc ?? format });
    return { priv };
  },

  'sim.stats': (ctx) => {
    const s = simState(ctx);
    const k = ctx.kernel.stats();
    return {
      domid: k.domid, pid: process.pid, driver: s.driver.stats(), heap: s.driver.heap.stats(),
      bufs: s.stores.bufs.size, fds: s.stores.fds.size, manyLive: s.many.hids.length,
      kernel: { usedPages: k.usedPages, grants: k.grants, mapper: k.mapper, nativeLiveMappings: k.nativeLiveMappings, wire: k.wire },
      copies: { ...s.copies }, consumer: { ...s.consumer },
    };
  },
};

/** The module. Load it after the dmabuf module, whose driver and objects it uses. */
export const simModule: VmModule = {
  name: 'sim',
  setup(ctx: VmContext) {
    const { driver, own, stores } = attachToDriver(ctx);
    const state: SimState = {
      driver, ownDriver: own, stores, fdByHid: new Map(), many: { bufs: [], hids: [] }, pendingShare: undefined,
      copies: { echoFrames: 0, echoBytes: 0, grantCopyFrames: 0, grantCopyBytes: 0 },
      consumer: { handoffs: 0, checkedOk: 0, checkedBad: 0, checkedBytes: 0 },
    };
    ctx.state.set('sim', state);
    countCopies(ctx, state.copies);
    ctx.kernel.hv.handlePeerRequest(SIM_FRAME_HANDOFF, (body, src) => handleHandoff(state, body, src));
    installCopyHandler(ctx);
  },
  async teardown(ctx: VmContext) {
    await closeWs();
    const s = ctx.state.get('sim') as SimState | undefined;
    if (s?.ownDriver) s.driver.close();
  },
  commands: { ...commands, ...manyCommands, ...simBenchCommands, ...simBenchCopyCommands },
};
