/**
 * Cross-VM fence commands of a VM process: timelines of this domain,
 * fences on them, export to peers, import, wait with timeouts, status and
 * sync_file info, the local containers (merge, array, chain) over imported
 * fences, callbacks, sw_sync timelines to bridge, and the two workloads
 * (frame stream, MPSC stress) that run whole loops inside the VM.
 *
 * Fences are referred to by numeric ids (the same fence always has the same
 * id); timelines by their timeline id. Errors carry stable codes:
 * ERR_BAD_ARGUMENT, ERR_STATE, ERR_LIMIT, ERR_PEER_GONE, ERR_TIMEOUT, or the
 * peer's protocol code.
 */
import { DmaFence, DmaFenceCb } from '../../../src/fence/dma-fence.ts';
import { dmaBufPoll, exportSyncFile, importSyncFile } from '../../../src/fence/dma-buf-sync-file.ts';
import { DmaResv, DmaResvUsage } from '../../../src/fence/dma-resv.ts';
import { DmaFenceArray } from '../../../src/fence/fence-array.ts';
import { chainFindSeqno, DmaFenceChain } from '../../../src/fence/fence-chain.ts';
import { allocateFenceContexts } from '../../../src/fence/fence-context.ts';
import { SwSyncTimeline } from '../../../src/fence/sw-sync.ts';
import { POLLIN, POLLOUT, SyncFile } from '../../../src/fence/sync-file.ts';
import { mergeFences } from '../../../src/fence/unwrap.ts';
import { FenceHost } from '../../../src/fence-remote/fence-host.ts';
import { FenceRemoteError } from '../../../src/guest/errors.ts';
import type { SharedTimeline } from '../../../src/fence-remote/shared-timeline.ts';
import { FrameStream } from '../../../workloads/fence-frame-stream.ts';
import { MpscStress } from '../../../workloads/mpsc-stress.ts';
import { argBool, argInt, argU32s } from './args.ts';
import { ObjectStore, type VmContext, type VmModule } from './commands.ts';

/** Fences by id, one id per fence. */
class FenceStore {
  readonly #byId = new Map<number, DmaFence>();
  readonly #ids = new Map<DmaFence, number>();
  #next = 1;

  /** The fence's id, assigning one on first sight. */
  idOf(fence: DmaFence): number {
    let id = this.#ids.get(fence);
    if (id === undefined) {
      id = this.#next++;
      this.#ids.set(fence, id);
      this.#byId.set(id, fence);
    }
    return id;
  }

  get(id: unknown): DmaFence {
    const f = typeof id === 'number' ? this.#byId.get(id) : undefined;
    if (!f) throw new FenceRemoteError('ERR_BAD_ARGUMENT', `no fence ${String(id)}`);
    return f;
  }

  put(id: number): void {
    const f = this.#byId.get(id);
    if (f) this.#ids.delete(f);
    this.#byId.delete(id);
  }

  get size(): number {
    return this.#byId.size;
  }
}

interface CallbackRecord {
  readonly cb: DmaFenceCb;
  readonly fence: DmaFence;
  ran: number;
}

interface FenceState {
  host: FenceHost;
  fences: FenceStore;
  callbacks: ObjectStore<CallbackRecord>;
  sw: ObjectStore<SwSyncTimeline>;
  resvs: ObjectStore<DmaResv>;
  streams: ObjectStore<FrameStream>;
  stress: ObjectStore<MpscStress>;
}

function st(ctx: VmContext): FenceState {
  return ctx.state.get('fence') as FenceState;
}

function timeline(ctx: VmContext, args: Record<string, unknown>): SharedTimeline {
  const id = argInt(args, 'tl');
  const tl = st(ctx).host.owner.get(id);
  if (!tl) throw new FenceRemoteError('ERR_BAD_ARGUMENT', `no live timeline ${id}`);
  return tl;
}

/** An error argument: 0, or an errno given either way (5 or -5 both mean -EIO). */
function argErrno(args: Record<string, unknown>, name: string): number {
  const v = args[name] ?? 0;
  if (typeof v !== 'number' || !Number.isInteger(v) || Math.abs(v) > 4095) throw new FenceRemoteError('ERR_BAD_ARGUMENT', `argument ${name} must be an errno`);
  return -Math.abs(v);
}

/** A timeout argument in ms; absent or negative means no limit. */
function argTimeout(args: Record<string, unknown>, name: string): number {
  const v = args[name];
  if (v === undefined) return Number.POSITIVE_INFINITY;
  if (typeof v !== 'number' || Number.isNaN(v)) throw new FenceRemoteError('ERR_BAD_ARGUMENT', `argument ${name} must be a number of ms`);
  return v < 0 ? Number.POSITIVE_INFINITY : v;
}

const USAGES: Record<string, DmaResvUsage> = { kernel: DmaResvUsage.KERNEL, write: DmaResvUsage.WRITE, read: DmaResvUsage.READ, bookkeep: DmaResvUsage.BOOKKEEP };
const ACCESSES = ['read', 'write', 'rw'] as const;

function argUsage(args: Record<string, unknown>): DmaResvUsage {
  const u = typeof args.usage === 'string' ? USAGES[args.usage] : undefined;
  if (u === undefined) throw new FenceRemoteError('ERR_BAD_ARGUMENT', 'usage must be kernel, write, read or bookkeep');
  return u;
}

function argAccess(args: Record<string, unknown>): (typeof ACCESSES)[number] {
  const a = ACCESSES.find((x) => x === args.access);
  if (a === undefined) throw new FenceRemoteError('ERR_BAD_ARGUMENT', 'access must be read, write or rw');
  return a;
}

function fenceList(ctx: VmContext, args: Record<string, unknown>): DmaFence[] {
  if (args.fence !== undefined) return [st(ctx).fences.get(args.fence)];
  return Array.from(argU32s(args, 'fences'), (id) => st(ctx).fences.get(id));
}

/** The sync_file that a list of fences stands for: the fence itself, an array, or their merge. */
function fileOf(fences: DmaFence[], merge: boolean, name = ''): SyncFile {
  if (merge) return SyncFile.create(mergeFences(...fences), name);
  return SyncFile.create(fences.length === 1 ? fences[0]! : new DmaFenceArray(fences, allocateFenceContexts(1), 1, false), name);
}

function infoOf(fence: DmaFence): Record<string, unknown> {
  const file = SyncFile.create(fence);
  const n = file.getInfo().numFences;
  const info = file.getInfo({ numFences: n });
  return {
    status: fence.getStatus(),
    fileStatus: info.status,
    numFences: n,
    fences: info.fences.map((f) => ({ status: f.status, objName: f.objName, driverName: f.driverName })),
  };
}

/** Busy-ness per access of a reservation object, by poll() and by an exported sync_file (IGT's dmabuf_busy / dmabuf_sync_file_busy). */
export function resvBusy(resv: DmaResv): Record<(typeof ACCESSES)[number], { poll: boolean; export: boolean }> {
  const out = {} as Record<(typeof ACCESSES)[number], { poll: boolean; export: boolean }>;
  for (const access of ACCESSES) {
    const events = access === 'read' ? POLLIN : POLLOUT;
    out[access] = { poll: dmaBufPoll(resv, events) === 0, export: (exportSyncFile(resv, access).poll() & POLLIN) === 0 };
  }
  return out;
}

async function timedWait(fence: DmaFence, timeoutMs: number): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  const ret = await fence.wait(timeoutMs);
  return { ret: Number.isFinite(ret) ? ret : -1, status: fence.getStatus(), elapsedMs: performance.now() - t0 };
}

/** The cross-VM fence command module. */
export const fenceModule: VmModule = {
  name: 'fence',
  setup(ctx) {
    const state: FenceState = {
      host: new FenceHost(ctx.kernel),
      fences: new FenceStore(),
      callbacks: new ObjectStore('callback'),
      sw: new ObjectStore('sw_sync timeline'),
      resvs: new ObjectStore('reservation object'),
      streams: new ObjectStore('frame stream'),
      stress: new ObjectStore('stress'),
    };
    ctx.state.set('fence', state);
  },
  async teardown(ctx) {
    const s = st(ctx);
    await Promise.allSettled([...s.streams.values()].map((x) => x.close(1000)));
    await Promise.allSettled([...s.stress.values()].map((x) => x.close(1000)));
    for (const sw of s.sw.values()) sw.close();
    await s.host.shutdown();
  },
  commands: {
    /** {name?} -> {tl, context}: a new timeline of this domain at value 0. */
    'fence.timeline.create': (ctx, args) => {
      const tl = st(ctx).host.createTimeline(typeof args.name === 'string' ? args.name : undefined);
      return { tl: tl.id, context: tl.context };
    },

    /** {tl}: destroys it (pending points -ENOENT, observers unmapped, page freed). */
    'fence.timeline.destroy': async (ctx, args) => { await st(ctx).host.destroyTimeline(timeline(ctx, args)); return {}; },

    /** {tl, peer}: shares it now (otherwise the first export does). */
    'fence.timeline.share': async (ctx, args) => { await st(ctx).host.shareTimeline(timeline(ctx, args), argInt(args, 'peer')); return {}; },

    /** {tl, peer}: stops sharing it with peer (its imports signal -ECANCELED). */
    'fence.timeline.unshare': async (ctx, args) => { await st(ctx).host.owner.unshare(timeline(ctx, args), argInt(args, 'peer')); return {}; },

    /** {tl} -> {value, pending, slotsUsed}. */
    'fence.timeline.info': (ctx, args) => {
      const tl = timeline(ctx, args);
      return { value: tl.value, pending: tl.pendingPoints, slotsUsed: tl.slotsUsed, state: tl.state };
    },

    /** {tl, seqno} -> {fence, status}: the point (born signalled if reached). */
    'fence.create': (ctx, args) => {
      const f = timeline(ctx, args).createFence(argInt(args, 'seqno'));
      return { fence: st(ctx).fences.idOf(f), status: f.getStatus() };
    },

    /** {tl, seqno, error?} -> {signalled, value}: advances the timeline; error (errno) goes to every point passed. */
    'fence.signal': (ctx, args) => {
      const tl = timeline(ctx, args);
      return { signalled: tl.signal(argInt(args, 'seqno'), argErrno(args, 'error')), value: tl.value };
    },

    /** {peer, cookie, fence | fences, merge?, name?} -> {leaves}: exports one fence, or a sync_file of several. */
    'fence.export': async (ctx, args) => {
      const file = fileOf(fenceList(ctx, args), argBool(args, 'merge', false), typeof args.name === 'string' ? args.name : '');
      const prepared = await st(ctx).host.prepareExport(argInt(args, 'peer'), file);
      await st(ctx).host.sendExport(prepared, { cookie: argInt(args, 'cookie'), ...(typeof args.name === 'string' ? { name: args.name } : {}) });
      return { leaves: prepared.refs.length, pending: prepared.refs.filter((r) => r.slot !== undefined).length };
    },

    /** {peer, tl, seqnos, cookieBase?}: creates and exports one point per seqno (cookie = cookieBase + index). */
    'fence.exportPoints': async (ctx, args) => {
      const tl = timeline(ctx, args);
      const peer = argInt(args, 'peer');
      const base = argInt(args, 'cookieBase', 0);
      const seqnos = argU32s(args, 'seqnos');
      await Promise.all(Array.from(seqnos, (s, i) => st(ctx).host.exportFence(peer, tl.createFence(s), { cookie: base + i })));
      return { exported: seqnos.length };
    },

    /** {src, cookie, timeoutMs?} -> {fence, status, numFences}: takes an import from the inbox. */
    'fence.import': async (ctx, args) => {
      const file = await st(ctx).host.takeImport(argInt(args, 'src'), argInt(args, 'cookie'), argTimeout(args, 'timeoutMs'));
      return { fence: st(ctx).fences.idOf(file.fence), status: file.fence.getStatus(), numFences: file.getInfo().numFences, name: file.name };
    },

    /** {fence, timeoutMs?} -> {ret, status, elapsedMs}: dma_fence_wait_timeout (ret -1 = waited forever and signalled). */
    'fence.wait': (ctx, args) => timedWait(st(ctx).fences.get(args.fence), argTimeout(args, 'timeoutMs')),

    /** {src, cookie, timeoutMs?} -> {fence, ret, status, elapsedMs}: takes an import, then waits for it, in one call. */
    'fence.waitImport': async (ctx, args) => {
      const timeoutMs = argTimeout(args, 'timeoutMs');
      const t0 = performance.now();
      const file = await st(ctx).host.takeImport(argInt(args, 'src'), argInt(args, 'cookie'), timeoutMs);
      const r = await timedWait(file.fence, Math.max(0, timeoutMs - (performance.now() - t0)));
      return { fence: st(ctx).fences.idOf(file.fence), ...r, elapsedMs: performance.now() - t0 };
    },

    /** {fence | fences} -> {statuses, signaled}: dma_fence_get_status (checks the page: no message). */
    'fence.status': (ctx, args) => {
      const list = fenceList(ctx, args);
      return { statuses: list.map((f) => f.getStatus()), signaled: list.map((f) => f.testSignaledFlag()) };
    },

    /** {fence} -> SYNC_IOC_FILE_INFO of a sync_file holding it: whole status and per-leaf statuses. */
    'fence.info': (ctx, args) => infoOf(st(ctx).fences.get(args.fence)),

    /** {fences} -> {fence}: dma_fence_unwrap_merge. */
    'fence.merge': (ctx, args) => ({ fence: st(ctx).fences.idOf(mergeFences(...fenceList(ctx, args))) }),

    /** {fences, any?} -> {fence}: a dma_fence_array (signal on all, or on any). */
    'fence.array': (ctx, args) => ({ fence: st(ctx).fences.idOf(new DmaFenceArray(fenceList(ctx, args), allocateFenceContexts(1), 1, argBool(args, 'any', false))) }),

    /** {fences, seqnos?} -> {chains}: chains[i] = chain(prev = chains[i-1], fences[i], seqnos[i] ?? i+1). */
    'fence.chain': (ctx, args) => {
      const list = fenceList(ctx, args);
      const seqnos = args.seqnos === undefined ? undefined : argU32s(args, 'seqnos');
      let prev: DmaFence | null = null;
      const chains = list.map((f, i) => {
        prev = new DmaFenceChain(prev, f, seqnos?.[i] ?? i + 1);
        return st(ctx).fences.idOf(prev);
      });
      return { chains };
    },

    /** {fence, seqno} -> {ret, found}: dma_fence_chain_find_seqno (found: fence id, or null if collected). */
    'fence.chainFind': (ctx, args) => {
      const r = chainFindSeqno(st(ctx).fences.get(args.fence), argInt(args, 'seqno'));
      return { ret: r.ret, found: r.fence === null ? null : st(ctx).fences.idOf(r.fence) };
    },

    /** {fence} -> {cb, ret}: dma_fence_add_callback (0, or -ENOENT if already signalled). */
    'fence.cb.add': (ctx, args) => {
      const fence = st(ctx).fences.get(args.fence);
      const rec: CallbackRecord = { cb: new DmaFenceCb(() => { rec.ran++; }), fence, ran: 0 };
      const ret = fence.addCallback(rec.cb);
      return { cb: st(ctx).callbacks.add(rec), ret };
    },

    /** {cb} -> {removed}: dma_fence_remove_callback. */
    'fence.cb.remove': (ctx, args) => {
      const rec = st(ctx).callbacks.get(args.cb);
      return { removed: rec.fence.removeCallback(rec.cb), ran: rec.ran };
    },

    /** {cb} -> {ran}: how many times the callback ran. */
    'fence.cb.state': (ctx, args) => ({ ran: st(ctx).callbacks.get(args.cb).ran }),

    /** {fence | fences}: forgets the ids. */
    'fence.put': (ctx, args) => {
      const ids = args.fence !== undefined ? [argInt(args, 'fence')] : Array.from(argU32s(args, 'fences'));
      for (const id of ids) st(ctx).fences.put(id);
      return {};
    },

    /** {name?} -> {sw}: a local sw_sync timeline (its points are bridged when exported). */
    'fence.sw.create': (ctx, args) => ({ sw: st(ctx).sw.add(new SwSyncTimeline(typeof args.name === 'string' ? args.name : 'sw_sync')) }),

    /** {sw, value} -> {fence}. */
    'fence.sw.point': (ctx, args) => ({ fence: st(ctx).fences.idOf(st(ctx).sw.get(args.sw).createPoint(argInt(args, 'value'))) }),

    /** {sw, count?}: SW_SYNC_IOC_INC. */
    'fence.sw.inc': (ctx, args) => { const sw = st(ctx).sw.get(args.sw); sw.inc(argInt(args, 'count', 1)); return { value: sw.value }; },

    /** {sw}: closes it (pending points -ENOENT). */
    'fence.sw.close': (ctx, args) => { st(ctx).sw.get(args.sw).close(); return {}; },

    /** -> {released}: destroys bridge timelines with no pending point. */
    'fence.bridge.releaseIdle': async (ctx) => ({ released: await st(ctx).host.releaseIdleBridges() }),

    /** -> {resv}: a local reservation object (not a buffer's: the dmabuf.sync commands use the buffers' own). */
    'fence.resv.create': (ctx) => ({ resv: st(ctx).resvs.add(new DmaResv()) }),

    /** {resv, fence, usage}: dma_resv_add_fence. */
    'fence.resv.add': (ctx, args) => { st(ctx).resvs.get(args.resv).addFence(st(ctx).fences.get(args.fence), argUsage(args)); return {}; },

    /** {resv, fence, access}: DMA_BUF_IOCTL_IMPORT_SYNC_FILE of a sync_file holding the fence (each leaf added on its own). */
    'fence.resv.import': (ctx, args) => {
      importSyncFile(st(ctx).resvs.get(args.resv), SyncFile.create(st(ctx).fences.get(args.fence)), argAccess(args));
      return {};
    },

    /** {resv, access} -> {fence}: DMA_BUF_IOCTL_EXPORT_SYNC_FILE (a snapshot; the signalled stub when idle). */
    'fence.resv.export': (ctx, args) => ({ fence: st(ctx).fences.idOf(exportSyncFile(st(ctx).resvs.get(args.resv), argAccess(args)).fence) }),

    /** {resv} -> per access, busy by poll() and by an exported sync_file (IGT's dmabuf_busy / dmabuf_sync_file_busy). */
    'fence.resv.busy': (ctx, args) => resvBusy(st(ctx).resvs.get(args.resv)),

    /** {resv, usage} -> {count}: unsignalled fences at that usage or stronger. */
    'fence.resv.count': (ctx, args) => ({ count: st(ctx).resvs.get(args.resv).getFences(argUsage(args)).length }),

    /** -> the fence layer's stats plus the kernel resources it uses. */
    'fence.stats': (ctx) => {
      const s = st(ctx);
      const k = ctx.kernel.stats();
      return {
        ...s.host.stats(),
        kernel: { mappings: k.mapper.liveMappings, ports: k.ports, granted: k.grants.granted, deferred: k.grants.deferred, usedPages: k.usedPages },
        objects: { fences: s.fences.size, callbacks: s.callbacks.size, streams: s.streams.size, stress: s.stress.size },
      };
    },

    /** {role: 'producer', peer, buffers?, pages?} | {role: 'consumer', peer, refs} -> {stream, refs}. */
    'fence.frames.setup': async (ctx, args) => {
      const s = st(ctx);
      const peer = argInt(args, 'peer');
      let stream: FrameStream;
      if (args.role === 'producer') {
        stream = await FrameStream.producer(s.host, ctx.kernel, peer, argInt(args, 'buffers', 3), argInt(args, 'pages', 16));
      } else if (args.role === 'consumer') {
        if (!Array.isArray(args.refs)) throw new FenceRemoteError('ERR_BAD_ARGUMENT', 'refs must be an array of ref arrays');
        stream = await FrameStream.consumer(s.host, ctx.kernel, peer, args.refs.map((r: unknown, i) => argU32s({ [`refs[${i}]`]: r }, `refs[${i}]`)));
      } else {
        throw new FenceRemoteError('ERR_BAD_ARGUMENT', 'role must be producer or consumer');
      }
      return { stream: s.streams.add(stream), refs: stream.refs };
    },

    /** {stream, frames, waitTimeoutMs?, window?, stallAt?, stallMs?} -> FrameRunResult (never throws for a fence error: it reports it). */
    'fence.frames.run': (ctx, args) => st(ctx).streams.get(args.stream).run({
      frames: argInt(args, 'frames'),
      ...(args.waitTimeoutMs !== undefined ? { waitTimeoutMs: argInt(args, 'waitTimeoutMs') } : {}),
      ...(args.window !== undefined ? { window: argInt(args, 'window') } : {}),
      ...(args.stallAt !== undefined ? { stallAt: argInt(args, 'stallAt') } : {}),
      ...(args.stallMs !== undefined ? { stallMs: argInt(args, 'stallMs') } : {}),
    }),

    /** {stream} -> {released}: releases the stream's timeline and buffers. */
    'fence.frames.close': async (ctx, args) => {
      const s = st(ctx);
      const released = await s.streams.get(args.stream).close();
      s.streams.delete(args.stream as number);
      return { released };
    },

    /** {role: 'consumer', producers} | {role: 'producer', consumer, ref} -> {stress, refs}. */
    'fence.mpsc.setup': async (ctx, args) => {
      const s = st(ctx);
      const stress = args.role === 'consumer'
        ? await MpscStress.consumer(s.host, ctx.kernel, Array.from(argU32s(args, 'producers')))
        : await MpscStress.producer(s.host, ctx.kernel, argInt(args, 'consumer'), argInt(args, 'ref'));
      return { stress: s.stress.add(stress), refs: stress.refs };
    },

    /** {stress, iterations, timeoutMs?} -> MpscResult. */
    'fence.mpsc.run': (ctx, args) => st(ctx).stress.get(args.stress).run(argInt(args, 'iterations'), argInt(args, 'timeoutMs', 10_000)),

    /** {stress}: releases the timeline and the counter page. */
    'fence.mpsc.close': async (ctx, args) => {
      const s = st(ctx);
      await s.stress.get(args.stress).close();
      s.stress.delete(args.stress as number);
      return {};
    },
  },
};
