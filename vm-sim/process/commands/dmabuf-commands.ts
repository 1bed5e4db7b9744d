/**
 * hyper_dmabuf commands of a VM process: the driver's user API (the
 * original's ioctls) over IPC, for the launcher and the multi-process tests.
 *
 * Objects are numeric ids: `buf` for a buffer of this VM's own RAM (system
 * heap), `fd` for a local dma-buf opened on an import. Buffer ids travel as
 * text, `dom:cnt:keyhex` (hidKey). Data never travels over IPC: the
 * exporter fills a pattern through its own view, the importer checks it
 * through the contiguous view over the grant mapping, and only verdicts come
 * back.
 *
 * Driver options may be given as JSON in HDMABUF_DMABUF_OPTIONS.
 *
 * Dynamic sharing (SPEC.md 11.8): `dmabuf.alloc {movable: true}` makes a
 * buffer that `dmabuf.move` / `dmabuf.moveLoop` can move; `dmabuf.pin` and
 * `dmabuf.unpin` pin a buffer or an fd; `dmabuf.produce`, `dmabuf.consume`
 * and `dmabuf.produceStop` stream numbered frames through a buffer
 * (dmabuf-stream.ts). Every command here re-fetches its kept view when a
 * move made it stale, and reads and writes between begin and end of CPU
 * access, so a move never lands in the middle of one.
 */
import { ProtocolError } from '../../../protocol/errors.ts';
import { messages } from '../../../protocol/registry.ts';
import type { DmaBuf } from '../../../src/dmabuf/dma-buf.ts';
import type { SystemHeapPriv } from '../../../src/dmabuf/system-heap.ts';
import { countRuns } from '../../../src/guest/frame-runs.ts';
import { HyperDmabuf, hidKey, parseHid, type HyperDmabufOptions, type NewImportEvent } from '../../../src/hyper-dmabuf/index.ts';
import { argBool, argInt } from './args.ts';
import { ObjectStore, type VmModule } from './commands.ts';
import { moveCommands } from './dmabuf-move-commands.ts';
import { argHid, badArg, st, type DmabufState, type Held } from './dmabuf-state.ts';
import { consumeFrames, freshView, startProducer } from '../../../workloads/move-stream.ts';
import { windowed } from '../sim/sim-many.ts';

/** The environment variable with the driver's options (JSON), if any. */
export const DMABUF_OPTIONS_ENV = 'HDMABUF_DMABUF_OPTIONS';

function argStr<T extends string>(args: Record<string, unknown>, name: string, allowed: readonly T[], dflt?: T): T {
  const v = args[name] ?? dflt;
  if (typeof v !== 'string' || !allowed.includes(v as T)) throw badArg(`argument ${name} must be one of ${allowed.join(', ')}`);
  return v as T;
}

function argBytes(args: Record<string, unknown>, name: string): Uint8Array | undefined {
  const v = args[name];
  if (v === undefined) return undefined;
  if (v instanceof Uint8Array) return v;
  throw badArg(`argument ${name} must be a Uint8Array`);
}

/** Word w of pattern `seed`: differs for every word of every page and every seed. */
function patternWord(seed: number, w: number): number {
  return (Math.imul(w + 1, 0x9e3779b1) ^ Math.imul(seed | 0, 0x01000193)) >>> 0;
}

/** Writes the pattern over the view (little-endian words from the view's first byte); the write and verify steps' pattern. */
export function fillPattern(view: Uint8Array, seed: number): void {
  const n = view.byteLength >>> 2;
  if (view.byteOffset % 4 === 0) {
    const words = new Uint32Array(view.buffer, view.byteOffset, n);
    for (let w = 0; w < n; w++) words[w] = patternWord(seed, w);
  } else {
    const dv = new DataView(view.buffer, view.byteOffset, view.byteLength);
    for (let w = 0; w < n; w++) dv.setUint32(w * 4, patternWord(seed, w), true);
  }
  const last = patternWord(seed, n);
  for (let i = n * 4; i < view.byteLength; i++) view[i] = (last >>> (8 * (i - n * 4))) & 0xff;
}

/** Checks every byte of the view against the pattern; the offset of the first wrong byte, or -1. */
function checkPattern(view: Uint8Array, seed: number): number {
  const n = view.byteLength >>> 2;
  const aligned = view.byteOffset % 4 === 0;
  const words = aligned ? new Uint32Array(view.buffer, view.byteOffset, n) : undefined;
  const dv = aligned ? undefined : new DataView(view.buffer, view.byteOffset, view.byteLength);
  for (let w = 0; w < n; w++) {
    const got = words ? words[w]! : dv!.getUint32(w * 4, true);
    if (got !== patternWord(seed, w)) {
      for (let b = 0; b < 4; b++) if (view[w * 4 + b] !== ((patternWord(seed, w) >>> (8 * b)) & 0xff)) return w * 4 + b;
    }
  }
  const last = patternWord(seed, n);
  for (let i = n * 4; i < view.byteLength; i++) if (view[i] !== ((last >>> (8 * (i - n * 4))) & 0xff)) return i;
  return -1;
}

/** The held object's view (one vmap, kept until the object is dropped; fetched again after a move). */
async function viewOf<P>(h: Held<P>): Promise<Uint8Array> {
  return (await freshView(h as Held<unknown>)).view;
}

/** Runs fn on the held object's view between begin and end of CPU access (so no move lands in it). */
async function withView<P, T>(h: Held<P>, dir: 'to_device' | 'from_device', fn: (view: Uint8Array) => T): Promise<T> {
  await h.buf.beginCpuAccess(dir);
  try {
    return fn(await viewOf(h));
  } finally {
    await h.buf.endCpuAccess(dir);
  }
}

async function drop<P>(h: Held<P>): Promise<void> {
  if (h.view) {
    const v = h.view;
    h.view = undefined;
    await h.buf.vunmap(v);
  }
  await h.buf.put();
}

function eventOut(e: NewImportEvent): Record<string, unknown> {
  return { ...e, hid: hidKey(e.hid) };
}

/** Converts text ids inside a probe body to id objects. */
function probeBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null) throw badArg('argument body must be an object');
  const out: Record<string, unknown> = { ...(body as Record<string, unknown>) };
  if (typeof out.hid === 'string') out.hid = parseHid(out.hid);
  return out;
}

/** The hyper_dmabuf command module. */
export const dmabufModule: VmModule = {
  name: 'dmabuf',
  setup(ctx) {
    const raw = process.env[DMABUF_OPTIONS_ENV];
    const options = raw ? (JSON.parse(raw) as HyperDmabufOptions) : {};
    const state: DmabufState = {
      driver: HyperDmabuf.load(ctx.kernel, options),
      bufs: new ObjectStore('dmabuf buffer'),
      fds: new ObjectStore('dmabuf fd'),
      producers: new ObjectStore('frame producer'),
    };
    ctx.state.set('dmabuf', state);
  },
  teardown(ctx) {
    // The kernel's shutdown that follows unmaps everything and closes the connection;
    // peers then see this domain die and recover (SPEC.md 11.3).
    for (const p of st(ctx).producers.values()) p.stop();
    st(ctx).driver.close();
  },
  commands: {
    /** {bytes, scattered?, firstOffset?, movable?} -> {buf, size, nents, runs}: a scrubbed buffer of own RAM (movable: dmabuf.move can move it). */
    'dmabuf.alloc': (ctx, args) => {
      const buf = st(ctx).driver.heap.alloc(argInt(args, 'bytes'), {
        scattered: argBool(args, 'scattered', false), firstOffset: argInt(args, 'firstOffset', 0), movable: argBool(args, 'movable', false),
      });
      return { buf: st(ctx).bufs.add({ buf, view: undefined }), size: buf.size, nents: buf.geometry.nents, runs: countRuns(buf.priv.frames) };
    },

    /** {buf, seed}: writes the pattern through the buffer's contiguous view. */
    'dmabuf.fill': async (ctx, args) => {
      const seed = argInt(args, 'seed');
      await withView(st(ctx).bufs.get(args.buf), 'to_device', (v) => fillPattern(v, seed));
      return {};
    },

    /** {buf, seed} -> {ok, firstBad}: checks the pattern in the buffer. */
    'dmabuf.check': async (ctx, args) => {
      const seed = argInt(args, 'seed');
      const bad = await withView(st(ctx).bufs.get(args.buf), 'from_device', (v) => checkPattern(v, seed));
      return { ok: bad < 0, firstBad: bad };
    },

    /** {buf} -> {frames}: the buffer's frames now (to check scrubbing after release; a move replaces them). */
    'dmabuf.frames': (ctx, args) => ({ frames: st(ctx).bufs.get(args.buf).buf.priv.frames.slice() }),

    /** {frames} -> {allocated, nonZero}: how many are still allocated, and how many hold a non-zero byte. */
    'dmabuf.framesState': (ctx, args) => {
      const frames = args.frames instanceof Uint32Array ? args.frames : undefined;
      if (!frames) throw badArg('argument frames must be a Uint32Array');
      let allocated = 0;
      let nonZero = 0;
      for (const f of frames) {
        if (ctx.kernel.allocator.isAllocated(f)) allocated++;
        if (ctx.kernel.ram.page(f).some((b) => b !== 0)) nonZero++;
      }
      return { allocated, nonZero };
    },

    /** {buf}: drops the user's reference (an export keeps its own). */
    'dmabuf.put': async (ctx, args) => {
      const s = st(ctx);
      await drop(s.bufs.get(args.buf));
      s.bufs.delete(args.buf as number);
      return {};
    },

    /** {buf, domid, priv?, access?, dirFormat?, owner?} -> {hid}: EXPORT_REMOTE. */
    'dmabuf.export': async (ctx, args) => {
      const priv = argBytes(args, 'priv');
      const owner = args.owner === undefined ? undefined : String(args.owner);
      const hid = await st(ctx).driver.exportRemote(st(ctx).bufs.get(args.buf).buf, argInt(args, 'domid'), {
        access: argStr(args, 'access', ['ro', 'rw'] as const, 'ro'),
        ...(priv ? { priv } : {}),
        ...(args.dirFormat !== undefined ? { dirFormat: argStr(args, 'dirFormat', ['multilevel', 'linked'] as const) } : {}),
        ...(owner !== undefined ? { owner } : {}),
      });
      return { hid: hidKey(hid) };
    },

    /** {hid, delayMs?, owner?} -> {outcome}: UNEXPORT; resolves when it took effect (or was cancelled). */
    'dmabuf.unexport': async (ctx, args) => {
      const owner = args.owner === undefined ? undefined : String(args.owner);
      const outcome = await st(ctx).driver.unexport(argHid(args), { delayMs: argInt(args, 'delayMs', 0), ...(owner !== undefined ? { owner } : {}) });
      return { outcome };
    },

    /** {hid, timeoutMs?}: resolves when the export is completely released (EXP_WAIT_RELEASED). */
    'dmabuf.waitReleased': async (ctx, args) => {
      await st(ctx).driver.waitReleased(argHid(args), args.timeoutMs === undefined ? undefined : argInt(args, 'timeoutMs'));
      return {};
    },

    /** {block?, timeoutMs?} -> the next NEW_IMPORT event, or {none: true} (non-blocking, empty). */
    'dmabuf.readEvent': async (ctx, args) => {
      const d = st(ctx).driver;
      if (!argBool(args, 'block', true)) {
        const e = d.tryReadEvent();
        return e ? eventOut(e) : { none: true };
      }
      return eventOut(await d.readEvent(args.timeoutMs === undefined ? {} : { timeoutMs: argInt(args, 'timeoutMs') }));
    },

    /** {hid, sync?} -> {fd, size}: EXPORT_FD, a local dma-buf over the mapped pages, answered once the exporter counted it. */
    'dmabuf.exportFd': async (ctx, args) => {
      const buf = await st(ctx).driver.exportFdCounted(argHid(args), args.sync === undefined ? {} : { sync: argStr(args, 'sync', ['ack', 'async'] as const) });
      return { fd: st(ctx).fds.add({ buf, view: undefined }), size: buf.size };
    },

    /** {fd, seed} -> {ok, firstBad, byteLength, generation}: checks every byte through the contiguous view, no copy. */
    'dmabuf.fdCheck': async (ctx, args) => {
      const h = st(ctx).fds.get(args.fd);
      const seed = argInt(args, 'seed');
      const [bad, byteLength] = await withView(h, 'from_device', (v) => [checkPattern(v, seed), v.byteLength] as const);
      return { ok: bad < 0, firstBad: bad, byteLength, generation: h.buf.generation };
    },

    /** {fd, seed}: writes the pattern through the view (a read-only import kills the process: SIGSEGV). */
    'dmabuf.fdFill': async (ctx, args) => {
      const seed = argInt(args, 'seed');
      await withView(st(ctx).fds.get(args.fd), 'to_device', (v) => fillPattern(v, seed));
      return {};
    },

    /** {fd, op: begin_cpu_access|end_cpu_access|attach|detach}: one dma-buf operation (mirrored to the exporter). */
    'dmabuf.fdOp': async (ctx, args) => {
      const h = st(ctx).fds.get(args.fd);
      const op = argStr(args, 'op', ['begin_cpu_access', 'end_cpu_access', 'attach', 'detach'] as const);
      const atts = (h.atts ??= []);
      if (op === 'begin_cpu_access') await h.buf.beginCpuAccess();
      else if (op === 'end_cpu_access') await h.buf.endCpuAccess();
      else if (op === 'attach') atts.push(await h.buf.attach('vm-user'));
      else {
        const att = atts.pop();
        if (!att) throw badArg('no attachment to detach');
        await h.buf.detach(att);
      }
      return { use: h.buf.use() };
    },

    /** {fd} -> {viewByteLength}: drops the fd; its view is detached once the last fd of the import is gone. */
    'dmabuf.release': async (ctx, args) => {
      const s = st(ctx);
      const h = s.fds.get(args.fd);
      const view = h.view;
      await drop(h);
      s.fds.delete(args.fd as number);
      return { viewByteLength: view?.byteLength ?? -1 };
    },

    /** {hid} -> every query item (with the move generation and state). */
    'dmabuf.query': (ctx, args) => st(ctx).driver.query(argHid(args)),

    ...moveCommands,

    /**
     * {buf, port, frames?} -> {frames, refetches, generation, ms}: writes numbered frames into the buffer,
     * handing each off over event-channel port `port` (dmabuf-stream.ts), until `frames` (default: until
     * dmabuf.produceStop); resolves once the consumer read the last frame. Emits 'producer' {producer} first.
     */
    'dmabuf.produce': async (ctx, args) => {
      const s = st(ctx);
      const run = startProducer(s.bufs.get(args.buf) as Held<unknown>, ctx.kernel.evtchn, argInt(args, 'port'), argInt(args, 'frames', 0));
      const id = s.producers.add(run);
      ctx.emit('producer', { producer: id });
      try {
        return { producer: id, ...(await run.done) };
      } finally {
        s.producers.delete(id);
      }
    },

    /** {producer?}: makes the next frame of a producer (default: every producer) the last. */
    'dmabuf.produceStop': (ctx, args) => {
      const s = st(ctx);
      if (args.producer === undefined) for (const p of s.producers.values()) p.stop();
      else s.producers.get(args.producer).stop();
      return {};
    },

    /**
     * {fd, port, pinEvery?, pinFrames?} -> {frames, ok, bad, badFrames, refetches, generationsSeen, generation,
     * pinWindows, pinnedFrames, pinViolations, ms}: reads and checks every frame through the fd's view until
     * the last one, re-fetching the view after each move, pinning pinFrames frames at every multiple of pinEvery.
     */
    'dmabuf.consume': async (ctx, args) => {
      const h = st(ctx).fds.get(args.fd);
      return consumeFrames(h, ctx.kernel.evtchn, argInt(args, 'port'), { pinEvery: argInt(args, 'pinEvery', 0), pinFrames: argInt(args, 'pinFrames', 1) });
    },

    /** -> driver statistics, plus the kernel's and this process's object counts. */
    'dmabuf.stats': (ctx) => {
      const s = st(ctx);
      return { ...s.driver.stats(), heap: s.driver.heap.stats(), bufs: s.bufs.size, fds: s.fds.size, kernel: ctx.kernel.stats() };
    },

    /**
     * {type, dst, body} -> {ok: true, value} or {ok: false, code}: sends one raw dmabuf request
     * as this domain (text ids in body.hid are converted). For conformance and hostile-peer tests.
     */
    'dmabuf.probe': async (ctx, args) => {
      const type = String(args.type);
      const decl = messages.get(type);
      if (!decl || decl.layer !== 'dmabuf' || decl.kind !== 'request') throw badArg(`${type} is not a dmabuf request`);
      try {
        const value = await ctx.kernel.hv.peerRequest(decl, argInt(args, 'dst'), probeBody(args.body) as never);
        return { ok: true, value };
      } catch (e) {
        if (e instanceof ProtocolError) return { ok: false, code: e.code, message: e.message };
        throw e;
      }
    },

    /** {domid, count, bytes, seed?, dirFormat?} -> {hids}: allocates, marks (first bytes), exports and lets go of `count` buffers. */
    'dmabuf.exportMany': async (ctx, args) => {
      const d = st(ctx).driver;
      const count = argInt(args, 'count');
      const bytes = argInt(args, 'bytes');
      const domid = argInt(args, 'domid');
      const seed = argInt(args, 'seed', 0);
      const hids: string[] = [];
      const bufs: DmaBuf<SystemHeapPriv>[] = [];
      for (let i = 0; i < count; i++) {
        const buf = d.heap.alloc(bytes);
        ctx.kernel.ram.page(buf.priv.frames[0]!).set([i & 0xff, (i >>> 8) & 0xff, seed & 0xff]);
        bufs.push(buf);
      }
      // In parallel, but at most 256 EXPORTs in flight: the backend refuses more than 1,024 requests of one connection (SPEC 3.7).
      const dirFormat = args.dirFormat === undefined ? undefined : argStr(args, 'dirFormat', ['multilevel', 'linked'] as const);
      const ids: Awaited<ReturnType<typeof d.exportRemote>>[] = new Array(bufs.length);
      await windowed(bufs.length, 256, async (i) => { ids[i] = await d.exportRemote(bufs[i]!, domid, dirFormat ? { dirFormat } : {}); }, () => undefined);
      for (const id of ids) hids.push(hidKey(id));
      // The exports hold the buffers now; the final release frees them.
      await Promise.all(bufs.map((b) => b.put()));
      return { hids };
    },

    /** {hids, seed?} -> {fds, bad}: opens an fd on each import (the i-th of the slice marked as buffer offset+i) and checks its first bytes. */
    'dmabuf.importMany': async (ctx, args) => {
      const s = st(ctx);
      const list = args.hids;
      if (!Array.isArray(list)) throw badArg('argument hids must be an array');
      const seed = argInt(args, 'seed', 0);
      const first = argInt(args, 'first', 0);
      const opened = await Promise.all(list.map((h) => s.driver.exportFdCounted(parseHid(String(h)))));
      let bad = 0;
      const fds: number[] = [];
      for (let i = 0; i < opened.length; i++) {
        const h: Held<unknown> = { buf: opened[i]!, view: undefined };
        const v = await viewOf(h);
        const n = first + i;
        if (v[0] !== (n & 0xff) || v[1] !== ((n >>> 8) & 0xff) || v[2] !== (seed & 0xff)) bad++;
        fds.push(s.fds.add(h));
      }
      return { fds, bad };
    },

    /** {fds}: releases many fds. */
    'dmabuf.releaseMany': async (ctx, args) => {
      const s = st(ctx);
      const list = args.fds;
      if (!Array.isArray(list)) throw badArg('argument fds must be an array');
      await Promise.all(list.map(async (id) => {
        await drop(s.fds.get(id));
        s.fds.delete(id as number);
      }));
      return {};
    },

    /** {hids, timeoutMs?}: unexports many and waits until each is released. */
    'dmabuf.unexportMany': async (ctx, args) => {
      const d = st(ctx).driver;
      const list = args.hids;
      if (!Array.isArray(list)) throw badArg('argument hids must be an array');
      const hids = list.map((h) => parseHid(String(h)));
      const timeoutMs = argInt(args, 'timeoutMs', 60_000);
      await Promise.all(hids.map(async (h) => {
        await d.unexport(h);
        await d.waitReleased(h, timeoutMs);
      }));
      return {};
    },
  },
};
