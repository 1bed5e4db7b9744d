/**
 * Kernel-level commands of a VM process: allocate and fill pages, grant
 * them, map a peer's grants, read and write through mappings, unmap, revoke,
 * copy, event channels, stats. The multi-process proofs of issue 2 drive
 * VMs through these; objects (buffers, mappings, releases) are referred to by
 * the numeric ids the commands return.
 */
import { ECHO } from '../../../protocol/messages/session.ts';
import { countRuns } from '../../../src/guest/frame-runs.ts';
import type { ForeignMapping } from '../../../src/guest/foreign-mapping.ts';
import { copyPages } from '../../../src/guest/grant-copy.ts';
import { revokeAndFree, type GrantRelease } from '../../../src/guest/grant-release.ts';
import { argBool, argInt, argU32s } from './args.ts';
import { ObjectStore, type VmContext, type VmModule } from './commands.ts';
import { checkPage, checksumPages, fillPage, pageWords, wordsOf } from '../../../workloads/frame-pattern.ts';

/** A buffer of this VM's own pages. */
interface Buffer {
  frames: Uint32Array;
  /** Set once a revoke took the buffer: its frames are freed by the release. */
  revoking: boolean;
}

interface KernelState {
  buffers: ObjectStore<Buffer>;
  mappings: ObjectStore<ForeignMapping>;
  releases: ObjectStore<GrantRelease>;
}

function st(ctx: VmContext): KernelState {
  return ctx.state.get('kernel') as KernelState;
}

function buffer(ctx: VmContext, args: Record<string, unknown>): Buffer {
  const b = st(ctx).buffers.get(args.buf);
  if (b.revoking) throw Object.assign(new Error(`buffer ${String(args.buf)} is being revoked`), { code: 'ERR_BAD_ARGUMENT' });
  return b;
}

function ramWords(ctx: VmContext, frames: Uint32Array): Uint32Array[] {
  return Array.from(frames, (f) => wordsOf(ctx.kernel.ram.page(f)));
}

function mappingWords(m: ForeignMapping): Uint32Array[] {
  return Array.from({ length: m.pages }, (_, k) => pageWords(m.view, k));
}

/** Index of the first page that does not hold the pattern, or -1. */
function firstBad(pages: Uint32Array[], seed: number): number {
  return pages.findIndex((words, k) => !checkPage(words, seed, k));
}

/** The kernel's command module. */
export const kernelModule: VmModule = {
  name: 'kernel',
  setup(ctx) {
    const state: KernelState = {
      buffers: new ObjectStore('buffer'),
      mappings: new ObjectStore('mapping'),
      releases: new ObjectStore('release'),
    };
    ctx.state.set('kernel', state);
    ctx.kernel.on('peerDied', (body) => ctx.emit('peerDied', body));
  },
  commands: {
    /** Liveness: {domid, pid}. */
    'kernel.ping': (ctx) => ({ domid: ctx.kernel.domid, pid: process.pid }),

    /** Kernel stats plus this process's object counts. */
    'kernel.stats': (ctx) => {
      const s = st(ctx);
      return { ...ctx.kernel.stats(), pid: process.pid, buffers: s.buffers.size, mappingObjects: s.mappings.size };
    },

    /** Shuts the kernel down and exits the process after answering. */
    'kernel.shutdown': (ctx) => { ctx.requestExit(0); return {}; },

    /** {pages, scattered?} -> {buf, frames, runs}: scrubbed pages of own RAM. */
    'mem.alloc': (ctx, args) => {
      const frames = ctx.kernel.allocator.alloc(argInt(args, 'pages'), { scattered: argBool(args, 'scattered', false) });
      return { buf: st(ctx).buffers.add({ frames, revoking: false }), frames, runs: countRuns(frames) };
    },

    /** {buf}: frees (and scrubs) a buffer that is not shared. */
    'mem.free': (ctx, args) => {
      const b = buffer(ctx, args);
      ctx.kernel.allocator.free(b.frames);
      st(ctx).buffers.delete(args.buf as number);
      return {};
    },

    /** {buf, seed}: writes the pattern into the buffer's pages. */
    'mem.fill': (ctx, args) => {
      const seed = argInt(args, 'seed');
      ramWords(ctx, buffer(ctx, args).frames).forEach((words, k) => fillPage(words, seed, k));
      return {};
    },

    /** {buf, seed} -> {ok, badPage}: checks the pattern in own RAM. */
    'mem.check': (ctx, args) => {
      const bad = firstBad(ramWords(ctx, buffer(ctx, args).frames), argInt(args, 'seed'));
      return { ok: bad < 0, badPage: bad };
    },

    /** {buf} -> {checksum, zero}: checksum of the buffer's pages, and whether all are zero. */
    'mem.checksum': (ctx, args) => {
      const pages = ramWords(ctx, buffer(ctx, args).frames);
      return { checksum: checksumPages(pages), zero: pages.every((w) => w.every((x) => x === 0)) };
    },

    /** {buf, domid, readonly} -> {refs}: grants every page of the buffer to domid. */
    'grant.many': async (ctx, args) => {
      const refs = await ctx.kernel.grants.grantAccessMany(argInt(args, 'domid'), buffer(ctx, args).frames, argBool(args, 'readonly'));
      return { refs };
    },

    /** {refs} -> {ended, busy, results}: tries to end access to each ref now. */
    'grant.end': (ctx, args) => {
      const results = Array.from(argU32s(args, 'refs'), (ref) => ctx.kernel.grants.endAccess(ref));
      return { ended: results.filter((r) => r === 'ended').length, busy: results.filter((r) => r === 'busy').length, results };
    },

    /** {refs, buf?} -> {release, pending}: ends access (deferred while mapped); frees buf once all ended. */
    'grant.revoke': (ctx, args) => {
      const s = st(ctx);
      const b = args.buf === undefined ? undefined : buffer(ctx, args);
      const release = revokeAndFree(ctx.kernel.grants, argU32s(args, 'refs'), ctx.kernel.allocator, b?.frames);
      if (b) {
        b.revoking = true;
        const id = args.buf as number;
        void release.done.then(() => s.buffers.delete(id), () => undefined);
      }
      return { release: s.releases.add(release), pending: release.pending, total: release.total };
    },

    /** {release} -> {state}: resolves once the release completed (every ref ended, frames freed). */
    'grant.awaitRevoked': async (ctx, args) => {
      const release = st(ctx).releases.get(args.release);
      await release.done;
      return { state: release.state };
    },

    /** -> {ended, pending}: retries deferred releases now. */
    'grant.retryDeferred': (ctx) => ({ ended: ctx.kernel.grants.retryDeferred(), pending: ctx.kernel.grants.pendingDeferred }),

    /** {dom, refs, readonly} -> {map, pages, mapRequests, byteLength}: one batched map. */
    'map.grants': async (ctx, args) => {
      const m = await ctx.kernel.mapper.mapGrants(argInt(args, 'dom'), argU32s(args, 'refs'), { readonly: argBool(args, 'readonly') });
      return { map: st(ctx).mappings.add(m), pages: m.pages, mapRequests: m.mapRequests, byteLength: m.view.byteLength, runs: countRuns(m.frames) };
    },

    /** {map, seed} -> {ok, badPage}: reads the pattern through the mapping. */
    'map.check': (ctx, args) => {
      const bad = firstBad(mappingWords(st(ctx).mappings.get(args.map)), argInt(args, 'seed'));
      return { ok: bad < 0, badPage: bad };
    },

    /** {map, seed}: writes the pattern through the mapping (faults if read-only). */
    'map.fill': (ctx, args) => {
      const seed = argInt(args, 'seed');
      mappingWords(st(ctx).mappings.get(args.map)).forEach((words, k) => fillPage(words, seed, k));
      return {};
    },

    /** {map, offset, value}: writes one byte through the mapping. A read-only mapping kills the process (SIGSEGV). */
    'map.writeByte': (ctx, args) => {
      const view = new Uint8Array(st(ctx).mappings.get(args.map).view);
      const offset = argInt(args, 'offset', 0);
      if (offset >= view.length) throw Object.assign(new Error(`offset ${offset} outside a view of ${view.length} bytes`), { code: 'ERR_BAD_ARGUMENT' });
      view[offset] = argInt(args, 'value', 0xab) & 0xff;
      return { value: view[offset] };
    },

    /** {map} -> {state, byteLength, pages}. */
    'map.info': (ctx, args) => {
      const m = st(ctx).mappings.get(args.map);
      return { state: m.state, byteLength: m.view.byteLength, pages: m.pages };
    },

    /** {map} -> {byteLength}: unmaps (view detached, then handles released in one round trip). */
    'map.unmap': async (ctx, args) => {
      const m = st(ctx).mappings.get(args.map);
      await m.unmap();
      return { byteLength: m.view.byteLength, state: m.state };
    },

    /** {dom, refs, buf}: GNTTAB_COPY of dom's granted pages into the buffer. */
    'copy.fromGrants': async (ctx, args) => {
      await copyPages(ctx.kernel.hv, 'from-grants', argInt(args, 'dom'), argU32s(args, 'refs'), buffer(ctx, args).frames);
      return {};
    },

    /** {dom, refs, buf}: GNTTAB_COPY of the buffer into dom's (writable) granted pages. */
    'copy.toGrants': async (ctx, args) => {
      await copyPages(ctx.kernel.hv, 'to-grants', argInt(args, 'dom'), argU32s(args, 'refs'), buffer(ctx, args).frames);
      return {};
    },

    /** {remoteDom} -> {port}. */
    'evtchn.allocUnbound': async (ctx, args) => ({ port: await ctx.kernel.evtchn.allocUnbound(argInt(args, 'remoteDom')) }),

    /** {remoteDom, remotePort} -> {port}. */
    'evtchn.bind': async (ctx, args) => ({ port: await ctx.kernel.evtchn.bindInterdomain(argInt(args, 'remoteDom'), argInt(args, 'remotePort')) }),

    /** {port}. */
    'evtchn.send': async (ctx, args) => { await ctx.kernel.evtchn.send(argInt(args, 'port')); return {}; },

    /** {port}. */
    'evtchn.close': async (ctx, args) => { await ctx.kernel.evtchn.close(argInt(args, 'port')); return {}; },

    /** {port, count} -> {received}: resolves once the port received at least count sends. */
    'evtchn.wait': async (ctx, args) => {
      const port = argInt(args, 'port');
      await ctx.kernel.evtchn.waitForEvents(port, argInt(args, 'count', 1));
      return { received: ctx.kernel.evtchn.received(port) };
    },

    /** {port} -> status as the backend reports it. */
    'evtchn.status': (ctx, args) => ctx.kernel.evtchn.status(argInt(args, 'port')),

    /** {dst, bytes} -> {bytes}: an ECHO round trip through the backend with a payload of that size. */
    'echo': async (ctx, args) => {
      const payload = new Uint8Array(argInt(args, 'bytes', 0));
      const reply = await ctx.kernel.hv.peerRequest(ECHO, argInt(args, 'dst'), { payload });
      return { bytes: reply.payload.byteLength };
    },
  },
};
