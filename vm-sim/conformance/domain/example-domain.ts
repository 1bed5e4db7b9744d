/**
 * The example domain for `hdmabuf conformance domain`: a guest built with
 * the library as the README shows it (GuestKernel, HyperDmabuf, and the fence
 * and reservation layers: FenceHost, DmabufSync), which obeys the commands of
 * protocol/SPEC.md Appendix B on stdin and answers on stdout.
 *
 *   hdmabuf conformance domain -- npx tsx vm-sim/conformance/domain/example-domain.ts
 *
 * HDMABUF_EXAMPLE_BREAK=<mutation> makes it break one rule on purpose, so that
 * a test can show the suite failing on that rule (test/conformance-domain):
 *   accept-foreign-id   answers DMABUF_EXPORT with `res` for an id whose dom
 *                       is not the sender (SPEC 10.1 says ERR_ID_DOMAIN_MISMATCH);
 *   hello-ignores-offer answers DMABUF_PEER_HELLO with its own first format
 *                       whether or not the exporter offered it (SPEC 10.4);
 *   ops-accept-undo     answers DMABUF_OPS_TO_SOURCE detach with `res` even
 *                       when nothing is attached (SPEC 11.3: ERR_BAD_ARGUMENT);
 *   move-any-generation answers DMABUF_MOVE_NOTIFY whose generation is not
 *                       newer than the import's with `res` (SPEC 11.8).
 * (Each wrapper answers before the driver sees the request, so the driver's
 * state stays as it was.)
 * HDMABUF_EXAMPLE_LAYERS=dmabuf loads the hyper_dmabuf driver only (no fence
 * or reservation layer), as a domain that implements less would.
 */
import { createInterface } from 'node:readline';
import { ProtocolError } from '../../../protocol/index.ts';
import type { DmaBuf } from '../../../src/dmabuf/dma-buf.ts';
import { FenceHost } from '../../../src/fence-remote/fence-host.ts';
import { GuestKernel } from '../../../src/guest/kernel.ts';
import { HyperDmabuf } from '../../../src/hyper-dmabuf/driver.ts';
import { hidKey, parseHid } from '../../../src/hyper-dmabuf/hid.ts';
import type { NewImportEvent } from '../../../src/hyper-dmabuf/event-queue.ts';
import { DmabufSync } from '../../../src/hyper-dmabuf/sync/index.ts';
import { fillPattern, readLaunchEnv, sha256, type AgentReply, type AgentRequest } from './contract.ts';

const launch = readLaunchEnv(process.env);
const kernel = await GuestKernel.boot({ ...launch, name: 'example-domain' });
const driver = HyperDmabuf.load(kernel);
const dmabufOnly = process.env.HDMABUF_EXAMPLE_LAYERS === 'dmabuf';
const fences = dmabufOnly ? undefined : new FenceHost(kernel);
const sync = fences ? DmabufSync.load(driver, fences) : undefined;
breakOnPurpose(process.env.HDMABUF_EXAMPLE_BREAK);

/** Buffers this domain exported, by text id (kept until released). */
const exported = new Map<string, DmaBuf>();
/** Open fds of imports, by text id. */
const imports = new Map<string, DmaBuf>();
/** The timeline this domain owns (fenceExport, fenceSignal), made on first use. */
let timeline: ReturnType<FenceHost['createTimeline']> | undefined;
/** NEW_IMPORT events read but not yet asked for, by text id. */
const events = new Map<string, NewImportEvent>();
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

async function nextEventOf(hid: string, timeoutMs: number): Promise<NewImportEvent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const seen = events.get(hid);
    if (seen) { events.delete(hid); return seen; }
    const ev = await driver.readEvent({ timeoutMs: Math.max(1, deadline - Date.now()) });
    events.set(hidKey(ev.hid), ev);
  }
}

/**
 * Reads the whole buffer through a view of the fd, made for this read: after a move (SPEC 11.8) the views of
 * the old mapping are detached, and a new view maps the buffer where it lives now.
 */
async function readThrough(fd: DmaBuf): Promise<{ digest: string; size: number }> {
  const view = await fd.vmap();
  try {
    return { digest: sha256(view), size: view.length };
  } finally {
    await fd.vunmap(view);
  }
}

async function run(req: AgentRequest): Promise<Record<string, unknown>> {
  switch (req.cmd) {
    case 'export': {
      const { peer, pages, seed, access, priv } = req.args;
      const buf = driver.heap.alloc(pages * 4096);
      const view = await buf.vmap();
      fillPattern(view, seed);
      await buf.vunmap(view);
      const hid = hidKey(await driver.exportRemote(buf, peer, { access, priv: Buffer.from(priv, 'hex') }));
      exported.set(hid, buf);
      return { hid };
    }
    case 'unexport':
      await driver.unexport(parseHid(req.args.hid));
      return {};
    case 'waitReleased': {
      const hid = req.args.hid;
      try {
        await driver.waitReleased(parseHid(hid), req.args.timeoutMs);
      } catch (e) {
        if ((e as ProtocolError).code === 'ERR_TIMEOUT') return { released: false };
        throw e;
      }
      await exported.get(hid)?.put();
      exported.delete(hid);
      return { released: true };
    }
    case 'import': {
      const ev = await nextEventOf(req.args.hid, req.args.timeoutMs);
      // Counted by the exporter before the answer, as B.3 asks (an early fd, SPEC 11.2 rule 2).
      const fd = await driver.exportFdCounted(ev.hid);
      imports.set(req.args.hid, fd);
      const { digest, size } = await readThrough(fd);
      return { sha256: digest, size, priv: hex(ev.priv) };
    }
    case 'read': {
      const open = imports.get(req.args.hid);
      if (!open) throw new ProtocolError('ERR_BAD_ARGUMENT', `no fd open on ${req.args.hid}`);
      return { sha256: (await readThrough(open)).digest };
    }
    case 'release': {
      const open = imports.get(req.args.hid);
      if (!open) throw new ProtocolError('ERR_BAD_ARGUMENT', `no fd open on ${req.args.hid}`);
      imports.delete(req.args.hid);
      await open.put();
      return {};
    }
    case 'fenceWait': {
      if (!fences) throw new ProtocolError('ERR_UNSUPPORTED_LAYER', 'this domain has no fence layer');
      const file = await fences.takeImport(req.args.from, req.args.cookie, req.args.timeoutMs);
      await file.wait(req.args.timeoutMs);
      return { status: file.fence.getStatus() };
    }
    case 'fenceExport': {
      if (!fences) throw new ProtocolError('ERR_UNSUPPORTED_LAYER', 'this domain has no fence layer');
      timeline ??= fences.createTimeline('example-domain');
      // exportFence shares the timeline with the peer first if it is not yet (11A.4).
      await fences.exportFence(req.args.peer, timeline.createFence(req.args.seqno), { cookie: req.args.cookie });
      return {};
    }
    case 'fenceSignal': {
      if (!timeline) throw new ProtocolError('ERR_BAD_ARGUMENT', 'no timeline: no fenceExport yet');
      timeline.signal(req.args.seqno);
      return {};
    }
    case 'shutdown':
      return {};
  }
}

function reply(r: AgentReply): void {
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

async function shutdown(): Promise<void> {
  // An import whose exporter already died cannot be unmapped cleanly; say so on stderr (stdout carries the agent's replies).
  for (const fd of imports.values()) {
    await fd.put().catch((e: unknown) => { process.stderr.write(`example domain: releasing an import at shutdown failed: ${String(e)}\n`); });
  }
  sync?.close();
  await fences?.shutdown();
  driver.close();
  await kernel.shutdown();
}

const lines = createInterface({ input: process.stdin });
let chain = Promise.resolve();
lines.on('line', (line) => {
  if (line.trim() === '') return;
  // Commands run one after another, in the order they came.
  chain = chain.then(async () => {
    let req: AgentRequest;
    try {
      req = JSON.parse(line) as AgentRequest;
    } catch {
      reply({ id: -1, ok: false, error: { code: 'ERR_BAD_ARGUMENT', message: `not JSON: ${line.slice(0, 80)}` } });
      return;
    }
    try {
      const result = await run(req);
      reply({ id: req.id, ok: true, result });
      if (req.cmd === 'shutdown') {
        await shutdown();
        process.exit(0);
      }
    } catch (e) {
      reply({ id: req.id, ok: false, error: { code: (e as ProtocolError).code ?? 'ERR_INTERNAL', message: (e as Error).message } });
    }
  });
});
// stdin closed (the harness is gone): leave cleanly.
lines.on('close', () => { chain = chain.then(async () => { await shutdown(); process.exit(0); }); });
process.stdout.write(`${JSON.stringify({ ready: true, domid: kernel.domid })}\n`);

/** The mutations (see the file comment): a handler of the driver wrapped to break one rule. */
function breakOnPurpose(mutation: string | undefined): void {
  if (!mutation) return;
  type Handler = (body: Record<string, unknown>, src: number, env: unknown) => Promise<Record<string, unknown>> | Record<string, unknown>;
  // The client's handler table is private; a deliberately broken domain reaches into it.
  const handlers = (kernel.hv as unknown as { peerHandlers: Map<string, Handler> }).peerHandlers;
  const wrap = (type: string, wrapper: (orig: Handler) => Handler): void => {
    const orig = handlers.get(type);
    if (!orig) throw new Error(`no handler for ${type} to break`);
    handlers.set(type, wrapper(orig));
  };
  if (mutation === 'accept-foreign-id') {
    wrap('DMABUF_EXPORT', (orig) => (body, src, env) => ((body.hid as { dom: number }).dom !== src ? {} : orig(body, src, env)));
  } else if (mutation === 'hello-ignores-offer') {
    wrap('DMABUF_PEER_HELLO', (orig) => async (body, src, env) => {
      const answer = await orig({ ...body, formats: ['multilevel', 'linked'] }, src, env);
      return { ...answer, format: 'multilevel', formats: ['multilevel', 'linked'] };
    });
  } else if (mutation === 'ops-accept-undo') {
    wrap('DMABUF_OPS_TO_SOURCE', (orig) => async (body, src, env) => {
      if (body.op !== 'detach') return orig(body, src, env);
      try {
        return await orig(body, src, env);
      } catch (e) {
        if ((e as ProtocolError).code !== 'ERR_BAD_ARGUMENT') throw e;
        return { busy: true };
      }
    });
  } else if (mutation === 'move-any-generation') {
    wrap('DMABUF_MOVE_NOTIFY', (orig) => async (body, src, env) => {
      try {
        return await orig(body, src, env);
      } catch (e) {
        if ((e as ProtocolError).code !== 'ERR_BAD_ARGUMENT' || !/generation/.test((e as Error).message)) throw e;
        return { remapped: false };
      }
    });
  } else {
    throw new Error(`HDMABUF_EXAMPLE_BREAK: unknown mutation ${mutation} (accept-foreign-id, hello-ignores-offer, ops-accept-undo, move-any-generation)`);
  }
}
