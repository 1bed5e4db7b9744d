/**
 * Commands of fences on shared buffers (SPEC.md 11A), over the dmabuf and
 * fence modules' objects: `buf` is a buffer of this VM (dmabuf.alloc), `fd`
 * an fd opened on an import (dmabuf.exportFd), fences are the fence
 * module's ids. Every command takes `buf` or `fd` and works on both, as
 * the dma-buf ioctls work on every dma-buf fd:
 *
 *   dmabuf.sync.add      {buf|fd, fence, usage}           dma_resv_add_fence        -> {replaced, appended}
 *   dmabuf.sync.import   {buf|fd, fence, access}          IMPORT_SYNC_FILE          -> {replaced, appended}
 *   dmabuf.sync.export   {buf|fd, access}                 EXPORT_SYNC_FILE          -> {fence, numFences, stub}
 *   dmabuf.sync.fences   {buf|fd, usage}                  dma_resv_get_fences       -> {fences, usages}
 *   dmabuf.sync.poll     {buf|fd, events, timeoutMs?}     poll()                    -> {revents, readable, writable}
 *   dmabuf.sync.busy     {buf|fd}                         IGT dmabuf_busy / dmabuf_sync_file_busy per access
 *   dmabuf.sync.begin    {buf|fd, dir?, timeoutMs?}       begin_cpu_access, with its implicit wait -> {waitedMs}
 *   dmabuf.sync.end      {buf|fd, dir?}                   end_cpu_access
 *   dmabuf.sync.entries  {buf}                            the exporter's reservation object, entry by entry
 *   dmabuf.sync.stats                                     the layer's statistics
 *   dmabuf.sync.untilWaited {side, count}                 resolves once `count` implicit waits of this VM's
 *                                                         buffers (exporter) or fds (importer) have begun
 *   dmabuf.sync.prepareRefs / probe / abortRefs           raw DMABUF_RESV_* requests (hostile-peer tests)
 *   dmabuf.sync.stream.setup / run / close                the buffer stream (the `fences` and `move` scenarios)
 */
import { ProtocolError } from '../../../protocol/errors.ts';
import { messages } from '../../../protocol/registry.ts';
import type { FENCE_REF } from '../../../protocol/messages/fence.ts';
import type { Infer } from '../../../protocol/schema.ts';
import type { DmaBuf } from '../../../src/dmabuf/dma-buf.ts';
import type { DmaFence } from '../../../src/fence/dma-fence.ts';
import { DmaResvUsage } from '../../../src/fence/dma-resv.ts';
import { isStubFence } from '../../../src/fence/stub.ts';
import { POLLIN, POLLOUT, SyncFile } from '../../../src/fence/sync-file.ts';
import type { FenceHost, PreparedExport } from '../../../src/fence-remote/fence-host.ts';
import { toRemoteFence } from '../../../src/fence-remote/remote-fence.ts';
import { parseHid } from '../../../src/hyper-dmabuf/hid.ts';
import { DmabufSync, usageOf, usageToWire } from '../../../src/hyper-dmabuf/sync/index.ts';
import { BufferStream } from '../../../workloads/buffer-stream.ts';
import { argBool, argInt, argU32s } from './args.ts';
import { ObjectStore, type VmContext, type VmModule } from './commands.ts';
import { badArg, st as dmabufState } from './dmabuf-state.ts';

/** A per-frame callback that emits 'progress' events at most every `ms` (and at the last frame). */
function progressEvery(ctx: VmContext, ms: number, total: number): (done: number) => void {
  let last = performance.now();
  return (done) => {
    const now = performance.now();
    if (done < total && now - last < ms) return;
    last = now;
    ctx.emit('progress', { what: 'frames', done, total });
  };
}

type FenceRef = Infer<(typeof FENCE_REF)['fields']>;

/** What this module uses of the fence module's state. */
interface FenceModuleState {
  host: FenceHost;
  fences: { idOf(f: DmaFence): number; get(id: unknown): DmaFence };
}

interface SyncState {
  sync: DmabufSync;
  streams: ObjectStore<BufferStream>;
  prepared: ObjectStore<PreparedExport>;
}

function st(ctx: VmContext): SyncState {
  return ctx.state.get('dmabuf-sync') as SyncState;
}

function fenceState(ctx: VmContext): FenceModuleState {
  return ctx.state.get('fence') as FenceModuleState;
}

/** The buffer or fd a command names (`buf` of this VM or `fd` on an import). */
export function target(ctx: VmContext, args: Record<string, unknown>): DmaBuf {
  const d = dmabufState(ctx);
  if (args.buf !== undefined) return d.bufs.get(args.buf).buf;
  if (args.fd !== undefined) return d.fds.get(args.fd).buf;
  throw badArg('give buf (a buffer of this VM) or fd (an fd on an import)');
}

const ACCESSES = ['read', 'write', 'rw'] as const;
const DIRS = ['bidirectional', 'to_device', 'from_device'] as const;

function oneOf<T extends string>(args: Record<string, unknown>, name: string, allowed: readonly T[], dflt?: T): T {
  const v = args[name] ?? dflt;
  if (typeof v !== 'string' || !allowed.includes(v as T)) throw badArg(`argument ${name} must be one of ${allowed.join(', ')}`);
  return v as T;
}

function argEvents(args: Record<string, unknown>): number {
  const v = args.events ?? 'inout';
  if (v === 'in') return POLLIN;
  if (v === 'out') return POLLOUT;
  if (v === 'inout') return POLLIN | POLLOUT;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  throw badArg('argument events must be in, out, inout or a poll bit mask');
}

/** One stored entry, as the exporter sees it. */
function entryOut(sync: DmabufSync, e: { fence: DmaFence; usage: DmaResvUsage }): Record<string, unknown> {
  return {
    dom: toRemoteFence(e.fence)?.owner ?? sync.driver.domid,
    seqno: e.fence.seqno,
    usage: usageToWire(e.usage),
    status: e.fence.getStatus(),
    name: e.fence.toString(),
  };
}

/** Busy-ness per access of a buffer or fd, by poll() and by an exported sync_file (IGT's dmabuf_busy / dmabuf_sync_file_busy). */
export async function bufBusy(sync: DmabufSync, buf: DmaBuf): Promise<Record<(typeof ACCESSES)[number], { poll: boolean; export: boolean }>> {
  const out = {} as Record<(typeof ACCESSES)[number], { poll: boolean; export: boolean }>;
  for (const access of ACCESSES) {
    const poll = (await sync.poll(buf, access === 'read' ? POLLIN : POLLOUT)) === 0;
    const exported = ((await sync.exportSyncFile(buf, access)).poll() & POLLIN) === 0;
    out[access] = { poll, export: exported };
  }
  return out;
}

/** A probe body: text ids converted. */
function probeBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null) throw badArg('argument body must be an object');
  const out: Record<string, unknown> = { ...(body as Record<string, unknown>) };
  if (typeof out.hid === 'string') out.hid = parseHid(out.hid);
  return out;
}

/** The dma-buf sync command module. */
export const dmabufSyncModule: VmModule = {
  name: 'dmabuf-sync',
  setup(ctx) {
    // Built on both: the driver's buffers and the fence layer's references.
    if (!ctx.state.has('dmabuf') || !ctx.state.has('fence')) throw new Error('module dmabuf-sync needs the fence and dmabuf modules loaded before it');
    const state: SyncState = {
      sync: DmabufSync.load(dmabufState(ctx).driver, fenceState(ctx).host),
      streams: new ObjectStore('buffer stream'),
      prepared: new ObjectStore('prepared refs'),
    };
    ctx.state.set('dmabuf-sync', state);
  },
  async teardown(ctx) {
    const s = st(ctx);
    await Promise.allSettled([...s.streams.values()].map((x) => x.close(1000)));
    for (const p of s.prepared.values()) p.abort();
    s.sync.close();
  },
  commands: {
    'dmabuf.sync.add': async (ctx, args) => st(ctx).sync.addFence(target(ctx, args), fenceState(ctx).fences.get(args.fence), usageOf(args.usage)),

    'dmabuf.sync.import': async (ctx, args) => st(ctx).sync.importSyncFile(target(ctx, args), SyncFile.create(fenceState(ctx).fences.get(args.fence)), oneOf(args, 'access', ACCESSES)),

    'dmabuf.sync.export': async (ctx, args) => {
      const file = await st(ctx).sync.exportSyncFile(target(ctx, args), oneOf(args, 'access', ACCESSES));
      return { fence: fenceState(ctx).fences.idOf(file.fence), numFences: file.getInfo().numFences, stub: isStubFence(file.fence), status: file.fence.getStatus() };
    },

    'dmabuf.sync.fences': async (ctx, args) => {
      const list = await st(ctx).sync.pendingFences(target(ctx, args), usageOf(args.usage));
      return { fences: list.map((p) => fenceState(ctx).fences.idOf(p.fence)), usages: list.map((p) => usageToWire(p.usage)) };
    },

    'dmabuf.sync.poll': async (ctx, args) => {
      const revents = await st(ctx).sync.poll(target(ctx, args), argEvents(args), args.timeoutMs === undefined ? 0 : argInt(args, 'timeoutMs'));
      return { revents, readable: (revents & POLLIN) !== 0, writable: (revents & POLLOUT) !== 0 };
    },

    'dmabuf.sync.busy': (ctx, args) => bufBusy(st(ctx).sync, target(ctx, args)),

    'dmabuf.sync.begin': async (ctx, args) => {
      const t0 = performance.now();
      await target(ctx, args).beginCpuAccess(oneOf(args, 'dir', DIRS, 'bidirectional'), args.timeoutMs === undefined ? {} : { timeoutMs: argInt(args, 'timeoutMs') });
      return { waitedMs: performance.now() - t0 };
    },

    'dmabuf.sync.end': async (ctx, args) => {
      await target(ctx, args).endCpuAccess(oneOf(args, 'dir', DIRS, 'bidirectional'));
      return {};
    },

    'dmabuf.sync.entries': (ctx, args) => {
      const sync = st(ctx).sync;
      const resv = sync.registry.get(dmabufState(ctx).bufs.get(args.buf).buf);
      return { entries: resv ? [...resv.resv.fences(DmaResvUsage.BOOKKEEP)].map((e) => entryOut(sync, e)) : [] };
    },

    'dmabuf.sync.untilWaited': async (ctx, args) => {
      await st(ctx).sync.untilCpuWaited(oneOf(args, 'side', ['exporter', 'importer'] as const), argInt(args, 'count'));
      return {};
    },
    'dmabuf.sync.stats': (ctx) => ({ ...st(ctx).sync.stats(), streams: st(ctx).streams.size, prepared: st(ctx).prepared.size }),

    /** {peer, fences} -> {prepared, refs}: FENCE_REFs for `peer`, holding their slot counts until probe or abortRefs. */
    'dmabuf.sync.prepareRefs': async (ctx, args) => {
      const fs = fenceState(ctx);
      const list = Array.from(argU32s(args, 'fences'), (id) => fs.fences.get(id));
      const parts = await Promise.all(list.map((f) => fs.host.prepareExport(argInt(args, 'peer'), f)));
      const refs = parts.flatMap((p) => p.refs);
      const prepared: PreparedExport = { peer: argInt(args, 'peer'), refs, abort: () => { for (const p of parts) p.abort(); } };
      return { prepared: st(ctx).prepared.add(prepared), refs };
    },

    /** {prepared}: returns the slot counts of refs that were never sent. */
    'dmabuf.sync.abortRefs': (ctx, args) => {
      const s = st(ctx);
      s.prepared.get(args.prepared).abort();
      s.prepared.delete(args.prepared as number);
      return {};
    },

    /**
     * {type, dst, body, prepared?} -> {ok: true, value} | {ok: false, code, message}: one raw DMABUF_RESV_*
     * request as this domain (body.hid as text). A refusal aborts `prepared`; the refs of a GET answer are
     * imported (so their slot counts go back) and returned as fence ids too.
     */
    'dmabuf.sync.probe': async (ctx, args) => {
      const type = String(args.type);
      const decl = messages.get(type);
      if (!decl || decl.layer !== 'dmabuf-sync' || decl.kind !== 'request') throw badArg(`${type} is not a dmabuf-sync request`);
      const s = st(ctx);
      const prepared = args.prepared === undefined ? undefined : s.prepared.get(args.prepared);
      if (prepared) s.prepared.delete(args.prepared as number);
      const dst = argInt(args, 'dst');
      try {
        const value = await ctx.kernel.hv.peerRequest(decl, dst, probeBody(args.body) as never) as Record<string, unknown>;
        const refs = value.fences as FenceRef[] | undefined;
        if (type === 'DMABUF_RESV_GET' && refs && refs.length > 0) {
          const fs = fenceState(ctx);
          return { ok: true, value, fences: fs.host.importRefs(dst, refs).map((f) => fs.fences.idOf(f)) };
        }
        return { ok: true, value };
      } catch (e) {
        if (e instanceof ProtocolError) {
          prepared?.abort();
          return { ok: false, code: e.code, message: e.message };
        }
        throw e;
      }
    },

    /** {role: 'producer', peer, buffers?, bytes?, movable?} | {role: 'consumer', peer, hids, sync?} -> {stream, hids}. */
    'dmabuf.sync.stream.setup': async (ctx, args) => {
      const s = st(ctx);
      const deps = { driver: dmabufState(ctx).driver, fences: fenceState(ctx).host, sync: s.sync };
      const peer = argInt(args, 'peer');
      let stream: BufferStream;
      if (args.role === 'producer') {
        stream = await BufferStream.producer(deps, peer, { buffers: argInt(args, 'buffers', 3), bytes: argInt(args, 'bytes', 64 * 1024), movable: argBool(args, 'movable', false) });
      } else if (args.role === 'consumer') {
        if (!Array.isArray(args.hids) || !args.hids.every((h) => typeof h === 'string')) throw badArg('argument hids must be an array of buffer ids');
        stream = await BufferStream.consumer(deps, peer, args.hids as string[], { sync: oneOf(args, 'sync', ['ack', 'async'] as const, 'ack') });
      } else {
        throw badArg('role must be producer or consumer');
      }
      return { stream: s.streams.add(stream), hids: stream.hids };
    },

    /**
     * {stream, frames, waitTimeoutMs?, window?, stallAt?, stallMs?, progressMs?} -> BufferRunResult (a fence error is
     * reported, not thrown). With progressMs, a 'progress' event {what: 'frames', done, total} at most that often, and at the end.
     */
    'dmabuf.sync.stream.run': (ctx, args) => st(ctx).streams.get(args.stream).run({
      frames: argInt(args, 'frames'),
      ...(args.progressMs !== undefined ? { onFrame: progressEvery(ctx, argInt(args, 'progressMs'), argInt(args, 'frames')) } : {}),
      ...(args.waitTimeoutMs !== undefined ? { waitTimeoutMs: argInt(args, 'waitTimeoutMs') } : {}),
      ...(args.window !== undefined ? { window: argInt(args, 'window') } : {}),
      ...(args.stallAt !== undefined ? { stallAt: argInt(args, 'stallAt') } : {}),
      ...(args.stallMs !== undefined ? { stallMs: argInt(args, 'stallMs') } : {}),
    }),

    /** {stream, frame, timeoutMs?} -> {frame}: resolves once the stream's run loop has started `frame`. */
    'dmabuf.sync.stream.whenFrame': async (ctx, args) => {
      const frame = argInt(args, 'frame');
      const timeoutMs = argInt(args, 'timeoutMs', 60_000);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error(`stream did not reach frame ${frame} within ${timeoutMs} ms`), { code: 'ERR_TIMEOUT' })), timeoutMs);
      });
      try {
        await Promise.race([st(ctx).streams.get(args.stream).whenFrame(frame), timeout]);
      } finally {
        clearTimeout(timer);
      }
      return { frame };
    },

    /**
     * {stream, graceMs?} -> {released, error?}: consumer: views and fds; producer: timeline, exports (waits for their
     * release), buffers. `error` {code, message} says why not everything was released (e.g. the importer died).
     */
    'dmabuf.sync.stream.close': async (ctx, args) => {
      const s = st(ctx);
      const stream = s.streams.get(args.stream);
      const released = await stream.close(argInt(args, 'graceMs', 5000));
      s.streams.delete(args.stream as number);
      return { released, ...(stream.closeError ? { error: stream.closeError } : {}) };
    },
  },
};
