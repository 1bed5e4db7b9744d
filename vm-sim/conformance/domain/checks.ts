/**
 * The checks of `hdmabuf conformance domain`: SPEC 10, 11 and 11A played
 * against the domain under test (DUT). Three kinds of peer talk to it:
 *
 *  - the probe, a raw connection that sends hand-made requests and checks
 *    every field of every answer against SPEC (refusals included);
 *  - reference domains, this project's library driver (one reading only
 *    `multilevel` directories, one only `linked`), which export to the DUT and
 *    import from it as any peer would, and fail loudly on a wrong answer;
 *  - the DUT's own commands (Appendix B.3) to make it export, import, release.
 *
 * A check of an optional layer the DUT does not announce in
 * DMABUF_PEER_HELLO `layers` is not applicable (reported as skipped, with why).
 */
import { randomBytes } from 'node:crypto';
import type { Envelope } from '../../../protocol/index.ts';
import type { DmaBuf } from '../../../src/dmabuf/dma-buf.ts';
import type { FenceHost } from '../../../src/fence-remote/fence-host.ts';
import type { GuestKernel } from '../../../src/guest/kernel.ts';
import type { HyperDmabuf } from '../../../src/hyper-dmabuf/driver.ts';
import { hidKey, parseHid } from '../../../src/hyper-dmabuf/hid.ts';
import type { DmabufSync } from '../../../src/hyper-dmabuf/sync/index.ts';
import type { WireClient, ErrBody } from '../wire.ts';
import type { DomainAgent } from './agent.ts';
import { fillPattern, patternSha256, sha256 } from './contract.ts';

/** A reference domain: this project's library guest. */
export interface RefDomain {
  readonly name: string;
  readonly domid: number;
  readonly kernel: GuestKernel;
  readonly driver: HyperDmabuf;
  readonly fences: FenceHost;
  readonly sync: DmabufSync;
}

/** What the checks work with. */
export interface DomainSuiteContext {
  readonly timeoutMs: number;
  readonly dut: { readonly domid: number; readonly agent: DomainAgent };
  /** The probe's raw connection (its own domain). */
  readonly probe: WireClient;
  readonly probeDomid: number;
  readonly control: WireClient;
  /** Reads only `multilevel` directories (so the DUT must export to it in that format). */
  readonly multi: RefDomain;
  /** Reads only `linked` directories. */
  readonly linked: RefDomain;
  /** The DUT's answer to the probe's DMABUF_PEER_HELLO (liveness), `layers` included if it said them. */
  readonly hello: { format: string; formats: string[]; maxPriv: number; maxPages: number; layers?: string[] };
  /** A fresh reference domain that a check may kill (DOMAIN_DESTROY); cleaned up by the runner. */
  spawnRef(name: string): Promise<RefDomain>;
  /** Destroys a reference domain made by spawnRef (its death, SPEC 9.2). */
  killRef(ref: RefDomain): Promise<void>;
}

/** One check. */
export interface DomainCheck {
  /** SPEC section, e.g. "10.4 DMABUF_PEER_HELLO". */
  section: string;
  /** The rule, e.g. "10.4 rule 1". */
  rule: string;
  name: string;
  /** The optional layer the check needs the DUT to announce (dmabuf is required, never optional here). */
  layer?: 'fence' | 'dmabuf-sync';
  run(ctx: DomainSuiteContext): Promise<void>;
}

/** A failed expectation. */
export class CheckFailed extends Error {}

/** Thrown by a check whose premise the DUT does not offer (e.g. a limit at the protocol's maximum): reported not applicable. */
export class NotApplicable extends Error {}

function expect(cond: unknown, what: string): asserts cond {
  if (!cond) throw new CheckFailed(what);
}

const show = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (x instanceof Uint8Array ? `<${x.length} bytes>` : x));

function expectErr(reply: Envelope, code: string, what: string): void {
  const body = reply.body as unknown as ErrBody;
  expect(reply.kind === 'err' && body.code === code, `${what}: expected err ${code}, got ${reply.kind} ${show(reply.body)}`);
}

function expectRes(reply: Envelope, what: string): Record<string, unknown> {
  expect(reply.kind === 'res', `${what}: expected res, got ${reply.kind} ${show(reply.body)}`);
  return reply.body;
}

/** A well-formed id of the probe's, never exported (nothing of it exists at the DUT). */
const probeHid = (dom: number) => ({ dom, cnt: 0x7000_0000 + (randomBytes(2).readUInt16LE() & 0xfff), key: new Uint8Array(randomBytes(16)) });

/** A DMABUF_EXPORT body the DUT must accept up to the field under test. */
function exportBody(dom: number, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { hid: probeHid(dom), nents: 1, firstOffset: 0, lastLength: 4096, dirRef: 9, dirFormat: 'multilevel', access: 'ro', priv: new Uint8Array(0), ...over };
}

let seedSerial = 17;

/** The reference domain exports a pattern buffer to the DUT; the DUT imports and reads it (SPEC 11.1 rule 1, 11.2 rules 1-3). */
async function refExportsToDut(ctx: DomainSuiteContext, ref: RefDomain, pages: number): Promise<{ hid: string; buf: DmaBuf; seed: number }> {
  const seed = seedSerial++;
  const buf = ref.driver.heap.alloc(pages * 4096);
  const view = await buf.vmap();
  fillPattern(view, seed);
  await buf.vunmap(view);
  const priv = new Uint8Array([1, 2, 3, seed]);
  const hid = hidKey(await ref.driver.exportRemote(buf, ctx.dut.domid, { priv }));
  const got = await ctx.dut.agent.call('import', { hid, timeoutMs: ctx.timeoutMs }, ctx.timeoutMs * 2);
  expect(got.size === pages * 4096, `the DUT's import of ${hid} is ${got.size} bytes, not ${pages * 4096}`);
  expect(got.sha256 === patternSha256(seed, pages * 4096), `the DUT read other bytes than the exporter's through ${hid} (sha256 ${got.sha256})`);
  expect(got.priv === Buffer.from(priv).toString('hex'), `the DUT's NEW_IMPORT carried private data ${got.priv}, not ${Buffer.from(priv).toString('hex')} (11.6)`);
  expect(ref.driver.query(parseHid(hid)).busy, `the exporter does not count the DUT's fd on ${hid}: no DMABUF_EXPORT_FD came (11.2 rule 3)`);
  return { hid, buf, seed };
}

/** Unexports at the reference domain and waits until every grant of the export ended (11.1 rule 5): the DUT unmapped everything. */
async function refUnexportsAndFrees(ctx: DomainSuiteContext, ref: RefDomain, hid: string, buf: DmaBuf): Promise<void> {
  await ref.driver.unexport(parseHid(hid));
  await ref.driver.waitReleased(parseHid(hid), ctx.timeoutMs).catch((e: Error) => {
    throw new CheckFailed(`the export ${hid} did not reach freed within ${ctx.timeoutMs} ms after the DUT released it: some grant is still mapped or an fd still counted (11.2 rule 5, 11.3 release): ${e.message}`);
  });
  await buf.put();
}

/** The DUT exports a pattern buffer to `ref`; `ref` imports, reads and checks it. */
async function dutExportsToRef(ctx: DomainSuiteContext, ref: RefDomain, pages: number): Promise<{ hid: string; fd: DmaBuf; view: Uint8Array }> {
  const seed = seedSerial++;
  const { hid } = await ctx.dut.agent.call('export', { peer: ref.domid, pages, seed, access: 'ro', priv: 'c0ffee' }, ctx.timeoutMs * 2);
  const parsed = parseHid(hid);
  expect(parsed.dom === ctx.dut.domid, `the DUT's id ${hid} names domain ${parsed.dom}, not itself (10.1)`);
  const ev = ref.driver.tryReadEvent() ?? await ref.driver.readEvent({ timeoutMs: ctx.timeoutMs });
  expect(hidKey(ev.hid) === hid, `the NEW_IMPORT at the importer is ${hidKey(ev.hid)}, not ${hid}: DMABUF_EXPORT was answered before... or another export came`);
  expect(Buffer.from(ev.priv).toString('hex') === 'c0ffee', `private data arrived as ${Buffer.from(ev.priv).toString('hex')}, not c0ffee (10.5: copied whole)`);
  const fd = await ref.driver.exportFdCounted(ev.hid);
  const view = await fd.vmap();
  expect(view.length === pages * 4096, `the import is ${view.length} bytes, not ${pages * 4096} (10.2 geometry)`);
  expect(sha256(view) === patternSha256(seed, pages * 4096), 'the importer read other bytes than the ones the DUT wrote (10.3 directory or grants wrong)');
  return { hid, fd, view };
}

async function closeFd(fd: DmaBuf, view: Uint8Array): Promise<void> {
  await fd.vunmap(view);
  await fd.put();
}

async function dutFrees(ctx: DomainSuiteContext, hid: string, what: string): Promise<void> {
  const r = await ctx.dut.agent.call('waitReleased', { hid, timeoutMs: ctx.timeoutMs }, ctx.timeoutMs * 2);
  expect(r.released, `the DUT's export ${hid} did not reach freed within ${ctx.timeoutMs} ms ${what} (11.1 rule 5)`);
}

const PEER_HELLO = { formats: ['multilevel', 'linked'], maxPriv: 4096, maxPages: 1 << 20 };

/** The probe's answer to a DMABUF_PEER_HELLO of the DUT: it reads both formats (it maps nothing). */
const PROBE_HELLO_ANSWER = { format: 'multilevel', formats: ['multilevel', 'linked'], maxPriv: 4096, maxPages: 1 << 20 };

/** The probe answers a routed request of the DUT's. */
function probeAnswers(ctx: DomainSuiteContext, req: Envelope, body: Record<string, unknown>): void {
  ctx.probe.send({ v: ctx.probe.version, kind: 'res', type: req.type, id: req.id, dst: ctx.dut.domid, body });
}

/**
 * The DUT exports `pages` pages to the probe (11.1 rule 1): the probe answers its DMABUF_PEER_HELLO, if it
 * negotiates, and registers the DMABUF_EXPORT; resolves with the id the DUT gave and the id as it travelled.
 */
async function dutExportsToProbe(ctx: DomainSuiteContext, pages: number): Promise<{ hid: string; wire: { dom: number; cnt: number; key: Uint8Array }; nents: number }> {
  const served = (async () => {
    for (;;) {
      const req = await ctx.probe.next((e) => e.kind === 'req' && e.src === ctx.dut.domid && (e.type === 'DMABUF_PEER_HELLO' || e.type === 'DMABUF_EXPORT'), 'the DUT\'s DMABUF_PEER_HELLO or DMABUF_EXPORT');
      if (req.type === 'DMABUF_PEER_HELLO') { probeAnswers(ctx, req, PROBE_HELLO_ANSWER); continue; }
      probeAnswers(ctx, req, {});
      return req.body as { hid: { dom: number; cnt: number; key: Uint8Array }; nents: number };
    }
  })();
  const { hid } = await ctx.dut.agent.call('export', { peer: ctx.probeDomid, pages, seed: seedSerial++, access: 'rw', priv: '' }, ctx.timeoutMs * 2);
  const body = await served;
  expect(hidKey(body.hid) === hid, `the DUT's DMABUF_EXPORT named ${hidKey(body.hid)}, but its export command answered ${hid}`);
  return { hid, wire: body.hid, nents: body.nents };
}

/** The DUT unexports an export to the probe (the probe answers DMABUF_NOTIFY_UNEXPORT with no fd open) and frees it. */
async function dutUnexportsFromProbe(ctx: DomainSuiteContext, hid: string): Promise<void> {
  const notified = ctx.probe.next((e) => e.kind === 'req' && e.type === 'DMABUF_NOTIFY_UNEXPORT' && e.src === ctx.dut.domid, 'the DUT\'s DMABUF_NOTIFY_UNEXPORT')
    .then((req) => probeAnswers(ctx, req, { openFds: 0 }));
  await ctx.dut.agent.call('unexport', { hid }, ctx.timeoutMs * 2);
  await notified;
  await dutFrees(ctx, hid, 'after its importer (the probe) released every fd and it unexported');
}

/** A DMABUF_MOVE_NOTIFY body for an import of one page (SPEC 11.8). */
function moveBody(hid: { dom: number; cnt: number; key: Uint8Array }, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { hid, generation: 1, nents: 1, firstOffset: 0, lastLength: 4096, dirRef: 10, dirFormat: 'multilevel', ...over };
}

/** Every check, in SPEC order. */
export const DOMAIN_CHECKS: readonly DomainCheck[] = [
  {
    section: '10.4 Negotiation (DMABUF_PEER_HELLO)', rule: '10.4 rule 1', name: '10.4 rule 1: the answer picks an offered format, lists only offered formats, and states limits in range',
    async run(ctx) {
      const a = expectRes(await ctx.probe.request('DMABUF_PEER_HELLO', PEER_HELLO, { dst: ctx.dut.domid }), 'DMABUF_PEER_HELLO offering both formats');
      const formats = a.formats as string[];
      expect(PEER_HELLO.formats.includes(a.format as string), `format ${show(a.format)} was not offered`);
      expect(formats.includes(a.format as string), `formats ${show(formats)} does not list the chosen format ${show(a.format)}`);
      expect(formats.every((f) => PEER_HELLO.formats.includes(f)), `formats ${show(formats)} lists a format not offered`);
      expect(Number.isInteger(a.maxPages) && (a.maxPages as number) >= 1, `maxPages ${show(a.maxPages)} is below 1`);
    },
  },
  ...(['multilevel', 'linked'] as const).map((only): DomainCheck => ({
    section: '10.4 Negotiation (DMABUF_PEER_HELLO)', rule: '10.4 rule 1', name: `10.4 rule 1: offered only ${only}, the answer is ${only} or ERR_NO_COMMON_FORMAT`,
    async run(ctx) {
      const reply = await ctx.probe.request('DMABUF_PEER_HELLO', { ...PEER_HELLO, formats: [only] }, { dst: ctx.dut.domid });
      if (reply.kind === 'err') return expectErr(reply, 'ERR_NO_COMMON_FORMAT', `DMABUF_PEER_HELLO offering only ${only}`);
      const a = reply.body;
      expect(a.format === only && show(a.formats) === show([only]), `offered only ${only}, answered format ${show(a.format)}, formats ${show(a.formats)}`);
    },
  })),
  {
    section: '10.4 Negotiation (DMABUF_PEER_HELLO)', rule: '10.4 layers', name: '10.4 layers: the layers announced are answered (each announced layer gets no ERR_UNSUPPORTED_LAYER)',
    async run(ctx) {
      const layers = ctx.hello.layers;
      if (layers === undefined) throw new NotApplicable('the DUT does not say its layers (DMABUF_PEER_HELLO without layers)');
      expect(layers.includes('dmabuf'), `layers ${show(layers)} does not name dmabuf, yet the DUT answered DMABUF_PEER_HELLO`);
      if (layers.includes('fence')) {
        // An unknown timeline: answered by the fence layer itself, not refused as a missing layer.
        const r = await ctx.probe.request('FENCE_TIMELINE_UNSHARE', { tl: 0xfffe, reason: 'unshared' }, { dst: ctx.dut.domid });
        expectErr(r, 'ERR_FENCE_UNKNOWN_TIMELINE', 'FENCE_TIMELINE_UNSHARE of a timeline never shared, to a domain announcing fence');
      }
      if (layers.includes('dmabuf-sync')) {
        const r = await ctx.probe.request('DMABUF_RESV_GET', { hid: probeHid(ctx.dut.domid), fdId: 1, usage: 'read' }, { dst: ctx.dut.domid });
        expectErr(r, 'ERR_UNKNOWN_BUFFER', 'DMABUF_RESV_GET for an id the DUT never exported, to a domain announcing dmabuf-sync');
      }
    },
  },
  {
    section: '6 Optional layers', rule: '6 optional layers', name: '6 optional layers: a layer the DUT does not announce is refused with ERR_UNSUPPORTED_LAYER',
    async run(ctx) {
      const layers = ctx.hello.layers;
      if (layers === undefined) throw new NotApplicable('the DUT does not say its layers (DMABUF_PEER_HELLO without layers)');
      if (layers.includes('fence') && layers.includes('dmabuf-sync')) throw new NotApplicable('the DUT announces every optional layer this suite knows');
      if (!layers.includes('fence')) {
        const r = await ctx.probe.request('FENCE_TIMELINE_UNSHARE', { tl: 1, reason: 'unshared' }, { dst: ctx.dut.domid });
        expectErr(r, 'ERR_UNSUPPORTED_LAYER', 'FENCE_TIMELINE_UNSHARE to a domain that does not announce fence');
      }
      if (!layers.includes('dmabuf-sync')) {
        const r = await ctx.probe.request('DMABUF_RESV_GET', { hid: probeHid(ctx.dut.domid), fdId: 1, usage: 'read' }, { dst: ctx.dut.domid });
        expectErr(r, 'ERR_UNSUPPORTED_LAYER', 'DMABUF_RESV_GET to a domain that does not announce dmabuf-sync');
      }
    },
  },
  {
    section: '10.1 Buffer ids', rule: '10.1 dom', name: '10.1 dom: DMABUF_EXPORT with an id whose dom is not the sender is refused with ERR_ID_DOMAIN_MISMATCH',
    async run(ctx) {
      const r = await ctx.probe.request('DMABUF_EXPORT', exportBody(ctx.multi.domid), { dst: ctx.dut.domid });
      expectErr(r, 'ERR_ID_DOMAIN_MISMATCH', `DMABUF_EXPORT from d${ctx.probeDomid} naming d${ctx.multi.domid} as exporter`);
    },
  },
  {
    section: '10.1 Buffer ids', rule: '10.1 dom', name: '10.1 dom: DMABUF_NOTIFY_UNEXPORT with an id whose dom is not the sender is refused with ERR_ID_DOMAIN_MISMATCH',
    async run(ctx) {
      const r = await ctx.probe.request('DMABUF_NOTIFY_UNEXPORT', { hid: probeHid(ctx.multi.domid) }, { dst: ctx.dut.domid });
      expectErr(r, 'ERR_ID_DOMAIN_MISMATCH', `DMABUF_NOTIFY_UNEXPORT from d${ctx.probeDomid} naming d${ctx.multi.domid}`);
    },
  },
  {
    section: '10.2 Buffer geometry', rule: '10.2 size', name: '10.2 size: an export whose size is below 1 byte is refused with ERR_BAD_ARGUMENT',
    async run(ctx) {
      const r = await ctx.probe.request('DMABUF_EXPORT', exportBody(ctx.probeDomid, { firstOffset: 200, lastLength: 100 }), { dst: ctx.dut.domid });
      expectErr(r, 'ERR_BAD_ARGUMENT', 'DMABUF_EXPORT of one page with firstOffset 200, lastLength 100');
    },
  },
  {
    section: '11.2 Importer states', rule: '11.2 rule 1', name: '11.2 rule 1: dirRef 0 is refused with ERR_BAD_ARGUMENT',
    async run(ctx) {
      const r = await ctx.probe.request('DMABUF_EXPORT', exportBody(ctx.probeDomid, { dirRef: 0 }), { dst: ctx.dut.domid });
      expectErr(r, 'ERR_BAD_ARGUMENT', 'DMABUF_EXPORT with dirRef 0');
    },
  },
  {
    section: '11.2 Importer states', rule: '11.2 rule 1', name: '11.2 rule 1: a private-data update (nents 0) for an unknown id is refused with ERR_UNKNOWN_BUFFER',
    async run(ctx) {
      const r = await ctx.probe.request('DMABUF_EXPORT', exportBody(ctx.probeDomid, { nents: 0, lastLength: 0, dirRef: 0 }), { dst: ctx.dut.domid });
      expectErr(r, 'ERR_UNKNOWN_BUFFER', 'DMABUF_EXPORT nents 0 for an id the DUT never registered');
    },
  },
  {
    section: '10.5 Bounds', rule: '10.5 private data', name: '10.5 private data: more than the importer\'s maxPriv is refused with ERR_PRIV_TOO_LARGE',
    async run(ctx) {
      if (ctx.hello.maxPriv >= 65_536) throw new NotApplicable(`the DUT's maxPriv (${ctx.hello.maxPriv}) is the wire's limit: no larger private data can be sent`);
      const r = await ctx.probe.request('DMABUF_EXPORT', exportBody(ctx.probeDomid, { priv: new Uint8Array(ctx.hello.maxPriv + 1) }), { dst: ctx.dut.domid });
      expectErr(r, 'ERR_PRIV_TOO_LARGE', `DMABUF_EXPORT with ${ctx.hello.maxPriv + 1} bytes of private data (the DUT's maxPriv is ${ctx.hello.maxPriv})`);
    },
  },
  {
    section: '10.5 Bounds', rule: '10.5 nents', name: '10.5 nents: more pages than the importer\'s maxPages is refused with ERR_BUFFER_TOO_LARGE',
    async run(ctx) {
      if (ctx.hello.maxPages >= 1 << 20) throw new NotApplicable(`the DUT's maxPages (${ctx.hello.maxPages}) is the wire's limit: no larger buffer can be sent`);
      const r = await ctx.probe.request('DMABUF_EXPORT', exportBody(ctx.probeDomid, { nents: ctx.hello.maxPages + 1 }), { dst: ctx.dut.domid });
      expectErr(r, 'ERR_BUFFER_TOO_LARGE', `DMABUF_EXPORT of ${ctx.hello.maxPages + 1} pages (the DUT's maxPages is ${ctx.hello.maxPages})`);
    },
  },
  ...(['multi', 'linked'] as const).map((which): DomainCheck => ({
    section: '11.2 Importer states', rule: '11.2 rules 1-5', name: `11.2 rules 1-5: the DUT imports a ${which === 'multi' ? 'multilevel' : 'linked'} export of 1,030 pages, reads the exporter's bytes, releases, and the export is freed`,
    async run(ctx) {
      const ref = ctx[which];
      const { hid, buf } = await refExportsToDut(ctx, ref, 1030);
      await ctx.dut.agent.call('release', { hid }, ctx.timeoutMs);
      await refUnexportsAndFrees(ctx, ref, hid, buf);
    },
  })),
  {
    section: '11.2 Importer states', rule: '11.2 invalid', name: '11.2 invalid: after DMABUF_NOTIFY_UNEXPORT the DUT\'s open fd keeps its view; its release frees the export',
    async run(ctx) {
      const { hid, buf, seed } = await refExportsToDut(ctx, ctx.multi, 3);
      await ctx.multi.driver.unexport(parseHid(hid));
      const again = await ctx.dut.agent.call('read', { hid }, ctx.timeoutMs);
      expect(again.sha256 === patternSha256(seed, 3 * 4096), 'after NOTIFY_UNEXPORT the DUT\'s open fd no longer reads the buffer (11.2: open fds keep working)');
      await ctx.dut.agent.call('release', { hid }, ctx.timeoutMs);
      await ctx.multi.driver.waitReleased(parseHid(hid), ctx.timeoutMs).catch((e: Error) => {
        throw new CheckFailed(`the export was not freed after the DUT released its last fd (11.2 rule 5): ${e.message}`);
      });
      await buf.put();
    },
  },
  {
    section: '11.4 Peer death', rule: '11.4 exporter died', name: '11.4 exporter died: the DUT\'s open fd stays readable after the exporter\'s death, and its release leaves no mapping',
    async run(ctx) {
      const ref = await ctx.spawnRef('dying-exporter');
      const { hid, seed } = await refExportsToDut(ctx, ref, 2);
      await ctx.killRef(ref);
      const again = await ctx.dut.agent.call('read', { hid }, ctx.timeoutMs);
      expect(again.sha256 === patternSha256(seed, 2 * 4096), 'the DUT\'s view changed after the exporter died (11.4: open fds keep a readable view)');
      await ctx.dut.agent.call('release', { hid }, ctx.timeoutMs);
      const stats = await ctx.control.call<{ domains: { domid: number; mappings: number }[] }>('HV_STATS', {});
      const dut = stats.domains.find((d) => d.domid === ctx.dut.domid);
      expect(dut?.mappings === 0, `the DUT still holds ${dut?.mappings} mapping(s) after releasing its last fd (11.2 rule 5)`);
    },
  },
  ...(['multi', 'linked'] as const).map((which): DomainCheck => ({
    section: '11.1 Exporter states', rule: '11.1 rules 1, 5', name: `11.1 rules 1, 5: the DUT exports 1,030 pages to a ${which === 'multi' ? 'multilevel' : 'linked'}-only importer; the bytes arrive; after unexport and release the export is freed`,
    async run(ctx) {
      const ref = ctx[which];
      const { hid, fd, view } = await dutExportsToRef(ctx, ref, 1030);
      await closeFd(fd, view);
      await ctx.dut.agent.call('unexport', { hid }, ctx.timeoutMs);
      await dutFrees(ctx, hid, 'after its importer released its fd and it unexported');
    },
  })),
  {
    section: '11.1 Exporter states', rule: '11.1 rule 4', name: '11.1 rule 4: unexport while the importer holds an fd: NOTIFY_UNEXPORT comes, new fds are refused, the release frees the export',
    async run(ctx) {
      const { hid, fd, view } = await dutExportsToRef(ctx, ctx.multi, 2);
      await ctx.dut.agent.call('unexport', { hid }, ctx.timeoutMs);
      const q = ctx.multi.driver.query(parseHid(hid));
      expect(q.unexported, 'the importer was not told of the unexport (DMABUF_NOTIFY_UNEXPORT) by the time the DUT said it took effect');
      const refused = await ctx.multi.driver.exportFd(parseHid(hid)).then((f) => f.put().then(() => 'an fd'), (e: { code?: string }) => e.code);
      expect(refused === 'ERR_UNEXPORTED', `a new fd after the unexport: ${refused}, not ERR_UNEXPORTED (11.2 invalid)`);
      await closeFd(fd, view);
      await dutFrees(ctx, hid, 'after the importer released its last fd');
    },
  },
  {
    section: '11.1 Exporter states', rule: '11.1 rule 3', name: '11.1 rule 3: DMABUF_EXPORT_FD from a domain the buffer was not exported to is refused with ERR_NOT_IMPORTER; a wrong key with ERR_UNKNOWN_BUFFER',
    async run(ctx) {
      const { hid, fd, view } = await dutExportsToRef(ctx, ctx.multi, 1);
      const id = parseHid(hid);
      try {
        expectErr(await ctx.probe.request('DMABUF_EXPORT_FD', { hid: id, fdId: 77 }, { dst: ctx.dut.domid }), 'ERR_NOT_IMPORTER', 'DMABUF_EXPORT_FD from a domain that is not the importer');
        const wrongKey = { ...id, key: new Uint8Array(id.key).map((b) => b ^ 0xff) };
        expectErr(await ctx.probe.request('DMABUF_EXPORT_FD', { hid: wrongKey, fdId: 78 }, { dst: ctx.dut.domid }), 'ERR_UNKNOWN_BUFFER', 'DMABUF_EXPORT_FD with the right counter and a wrong key (10.1: an unknown id)');
        expectErr(await ctx.probe.request('DMABUF_OPS_TO_SOURCE', { hid: id, fdId: 1, op: 'attach' }, { dst: ctx.dut.domid }), 'ERR_NOT_IMPORTER', 'DMABUF_OPS_TO_SOURCE from a domain that is not the importer (11.3)');
      } finally {
        await closeFd(fd, view);
        await ctx.dut.agent.call('unexport', { hid }, ctx.timeoutMs);
        await dutFrees(ctx, hid, 'after the check');
      }
    },
  },
  {
    section: '11.3 Remote sync (DMABUF_OPS_TO_SOURCE)', rule: '11.3 refusals', name: '11.3 refusals: as exporter, the DUT refuses each undo with nothing to undo, a map without attachment, a detach while mapped, a kmap past the buffer and an fd that is not open, and answers busy as the fd stands',
    async run(ctx) {
      const { hid, wire, nents } = await dutExportsToProbe(ctx, 2);
      const fdId = 31;
      const op = (o: string, extra: Record<string, unknown> = {}, id = fdId): Promise<Envelope> => ctx.probe.request('DMABUF_OPS_TO_SOURCE', { hid: wire, fdId: id, op: o, ...extra }, { dst: ctx.dut.domid });
      const ok = async (o: string, busy: boolean, extra: Record<string, unknown> = {}): Promise<void> => {
        const body = expectRes(await op(o, extra), `DMABUF_OPS_TO_SOURCE ${o}`);
        expect(body.busy === busy, `DMABUF_OPS_TO_SOURCE ${o} answered busy ${show(body.busy)}, not ${busy} (11.3: busy while an fd is open)`);
      };
      let fdOpen = false;
      try {
        // No fd open yet: any op on it is refused.
        expectErr(await op('attach'), 'ERR_BAD_ARGUMENT', 'DMABUF_OPS_TO_SOURCE attach for an fdId never opened');
        expectRes(await ctx.probe.request('DMABUF_EXPORT_FD', { hid: wire, fdId }, { dst: ctx.dut.domid }), 'DMABUF_EXPORT_FD by the importer');
        fdOpen = true;
        for (const o of ['detach', 'unmap', 'end_cpu_access', 'vunmap', 'kunmap', 'unpin']) {
          expectErr(await op(o), 'ERR_BAD_ARGUMENT', `DMABUF_OPS_TO_SOURCE ${o} with nothing to undo`);
        }
        expectErr(await op('map'), 'ERR_BAD_ARGUMENT', 'DMABUF_OPS_TO_SOURCE map with no attachment');
        expectErr(await op('kmap', { page: nents }), 'ERR_BAD_ARGUMENT', `DMABUF_OPS_TO_SOURCE kmap of page ${nents} of a ${nents}-page buffer`);
        expectErr(await op('attach', {}, fdId + 1), 'ERR_BAD_ARGUMENT', 'DMABUF_OPS_TO_SOURCE for another fdId than the open one');
        await ok('attach', true);
        await ok('map', true, { dir: 'to_device' });
        expectErr(await op('detach'), 'ERR_BUSY', 'DMABUF_OPS_TO_SOURCE detach while the attachment is mapped');
        await ok('unmap', true, { dir: 'to_device' });
        await ok('detach', true);
        await ok('kmap', true, { page: nents - 1 });
        await ok('kunmap', true, { page: nents - 1 });
        expectErr(await op('kunmap', { page: nents - 1 }), 'ERR_BAD_ARGUMENT', 'DMABUF_OPS_TO_SOURCE kunmap of a page kmapped no more');
        await ok('begin_cpu_access', true, { dir: 'from_device' });
        await ok('end_cpu_access', true, { dir: 'from_device' });
        await ok('vmap', true);
        await ok('vunmap', true);
        await ok('attach', true);
        // release undoes what is left on the fd's stacks (the attachment) and closes the fd.
        await ok('release', false);
        fdOpen = false;
        expectErr(await op('attach'), 'ERR_BAD_ARGUMENT', 'DMABUF_OPS_TO_SOURCE on an fd after its release');
      } catch (e) {
        // The failure is the check's verdict; the cleanup only keeps the run's teardown meaningful, and
        // whatever it leaves behind is reported by the run's final HV_STATS check (Appendix B).
        if (fdOpen) await op('release').catch(() => undefined);
        await dutUnexportsFromProbe(ctx, hid).catch(() => undefined);
        throw e;
      }
      await dutUnexportsFromProbe(ctx, hid);
    },
  },
  {
    section: '11.8 Dynamic sharing and move_notify', rule: '11.8 refusals', name: '11.8 refusals: DMABUF_MOVE_NOTIFY naming another exporter, an unknown id, another geometry, or a generation not newer is refused; a valid one is answered',
    async run(ctx) {
      expectErr(await ctx.probe.request('DMABUF_MOVE_NOTIFY', moveBody(probeHid(ctx.multi.domid)), { dst: ctx.dut.domid }), 'ERR_ID_DOMAIN_MISMATCH', `DMABUF_MOVE_NOTIFY from d${ctx.probeDomid} naming d${ctx.multi.domid}`);
      expectErr(await ctx.probe.request('DMABUF_MOVE_NOTIFY', moveBody(probeHid(ctx.probeDomid)), { dst: ctx.dut.domid }), 'ERR_UNKNOWN_BUFFER', 'DMABUF_MOVE_NOTIFY for an id the DUT does not hold');
      // A one-page import of the probe's, registered and never mapped (no fd: nothing to unmap).
      const body = exportBody(ctx.probeDomid);
      const hid = body.hid as { dom: number; cnt: number; key: Uint8Array };
      expectRes(await ctx.probe.request('DMABUF_EXPORT', body, { dst: ctx.dut.domid }), 'DMABUF_EXPORT of one page by the probe');
      try {
        expectErr(await ctx.probe.request('DMABUF_MOVE_NOTIFY', moveBody(hid, { nents: 2 }), { dst: ctx.dut.domid }), 'ERR_BAD_ARGUMENT', 'DMABUF_MOVE_NOTIFY with nents 2 for a one-page import');
        expectErr(await ctx.probe.request('DMABUF_MOVE_NOTIFY', moveBody(hid, { lastLength: 100 }), { dst: ctx.dut.domid }), 'ERR_BAD_ARGUMENT', 'DMABUF_MOVE_NOTIFY with another lastLength than the EXPORT\'s');
        const moved = expectRes(await ctx.probe.request('DMABUF_MOVE_NOTIFY', moveBody(hid), { dst: ctx.dut.domid }), 'DMABUF_MOVE_NOTIFY generation 1 of an import with no fd');
        expect(typeof moved.remapped === 'boolean', `DMABUF_MOVE_NOTIFY answered remapped ${show(moved.remapped)}, not a bool`);
        expectErr(await ctx.probe.request('DMABUF_MOVE_NOTIFY', moveBody(hid, { dirRef: 11 }), { dst: ctx.dut.domid }), 'ERR_BAD_ARGUMENT', 'DMABUF_MOVE_NOTIFY generation 1 again (not newer than the import\'s)');
      } finally {
        const r = expectRes(await ctx.probe.request('DMABUF_NOTIFY_UNEXPORT', { hid }, { dst: ctx.dut.domid }), 'DMABUF_NOTIFY_UNEXPORT of the probe\'s import');
        expect(r.openFds === 0, `DMABUF_NOTIFY_UNEXPORT answered openFds ${show(r.openFds)} for an import the DUT never opened`);
      }
    },
  },
  {
    section: '11.8 Dynamic sharing and move_notify', rule: '11.8 move', name: '11.8 move: the exporter moves a buffer the DUT maps; the DUT lets the old pages go and reads the new ones, also after the exporter writes them; its release frees the export',
    async run(ctx) {
      const ref = ctx.multi;
      const pages = 3;
      const seed = seedSerial++;
      const buf = ref.driver.heap.alloc(pages * 4096, { movable: true });
      const write = async (s: number): Promise<void> => { const v = await buf.vmap(); fillPattern(v, s); await buf.vunmap(v); };
      await write(seed);
      const hid = hidKey(await ref.driver.exportRemote(buf, ctx.dut.domid, {}));
      const got = await ctx.dut.agent.call('import', { hid, timeoutMs: ctx.timeoutMs }, ctx.timeoutMs * 2);
      expect(got.sha256 === patternSha256(seed, pages * 4096), 'the DUT read other bytes than the exporter\'s before any move');
      const moved = await ref.driver.move(parseHid(hid), { timeoutMs: ctx.timeoutMs });
      expect(moved.notifyErrors === 0, `the DUT did not acknowledge DMABUF_MOVE_NOTIFY (${moved.notifyErrors} notify error(s)): the old pages cannot be freed (11.8)`);
      const after = await ctx.dut.agent.call('read', { hid }, ctx.timeoutMs);
      expect(after.sha256 === patternSha256(seed, pages * 4096), 'after the move the DUT reads other bytes than the buffer\'s (11.8: it must map the new location)');
      // The exporter writes the new pages: a DUT still reading the old ones (scrubbed and freed) would see zeros.
      const seed2 = seedSerial++;
      await write(seed2);
      const fresh = await ctx.dut.agent.call('read', { hid }, ctx.timeoutMs);
      expect(fresh.sha256 === patternSha256(seed2, pages * 4096), 'after the move the DUT does not see what the exporter wrote into the new pages (11.8)');
      await ctx.dut.agent.call('release', { hid }, ctx.timeoutMs);
      await refUnexportsAndFrees(ctx, ref, hid, buf);
    },
  },
  {
    section: '11.4 Peer death', rule: '11.4 importer died', name: '11.4 importer died: the DUT\'s export to a domain that dies with an fd open is freed',
    async run(ctx) {
      const ref = await ctx.spawnRef('dying-importer');
      const { hid } = await dutExportsToRef(ctx, ref, 2);
      await ctx.killRef(ref);
      await dutFrees(ctx, hid, 'after its importer died (DOMAIN_DIED)');
    },
  },
  {
    section: '11A Fences across VMs', rule: '11A.4 observer', layer: 'fence', name: '11A.4 observer: the DUT observes a timeline we own: SHARE, EXPORT answered; the fence signals with status 1; UNSHARE answered',
    async run(ctx) {
      const host = ctx.multi.fences;
      const tl = host.createTimeline('conformance');
      try {
        const cookie = 4242;
        await host.exportFence(ctx.dut.domid, tl.createFence(1), { cookie });
        const waited = ctx.dut.agent.call('fenceWait', { from: ctx.multi.domid, cookie, timeoutMs: ctx.timeoutMs }, ctx.timeoutMs * 2);
        tl.signal(1);
        const r = await waited;
        expect(r.status === 1, `the DUT's fence ended with status ${r.status}, not 1 (11A.5)`);
      } finally {
        await host.destroyTimeline(tl);
      }
    },
  },
  {
    section: '11A Fences across VMs', rule: '11A.4 owner', layer: 'fence', name: '11A.4 owner: the DUT owns a timeline: it shares it and exports a fence to our observer, which stays pending until the DUT signals it, then ends with status 1',
    async run(ctx) {
      const ref = ctx.multi;
      const cookie = 4545;
      const seqno = 3;
      await ctx.dut.agent.call('fenceExport', { peer: ref.domid, cookie, seqno }, ctx.timeoutMs * 2);
      const file = await ref.fences.takeImport(ctx.dut.domid, cookie, ctx.timeoutMs).catch((e: Error) => {
        throw new CheckFailed(`no FENCE_EXPORT of the DUT under cookie ${cookie} reached the observer (11A.4): ${e.message}`);
      });
      expect(!file.fence.isSignaled(), 'the DUT\'s fence was signalled before the DUT signalled its timeline (11A.3)');
      await ctx.dut.agent.call('fenceSignal', { seqno }, ctx.timeoutMs);
      await file.wait(ctx.timeoutMs).catch((e: Error) => {
        throw new CheckFailed(`the DUT signalled seqno ${seqno}, but the observer's fence did not signal within ${ctx.timeoutMs} ms (11A.2 timeline page, 11A.4): ${e.message}`);
      });
      expect(file.fence.getStatus() === 1, `the observer's fence ended with status ${file.fence.getStatus()}, not 1 (11A.5)`);
    },
  },
  {
    section: '11A Fences across VMs', rule: '11A.4 closed', layer: 'fence', name: '11A.4 closed: a pending fence of a destroyed timeline ends with -ENOENT at the DUT',
    async run(ctx) {
      const host = ctx.multi.fences;
      const tl = host.createTimeline('conformance-closed');
      const cookie = 4343;
      await host.exportFence(ctx.dut.domid, tl.createFence(5), { cookie });
      const waited = ctx.dut.agent.call('fenceWait', { from: ctx.multi.domid, cookie, timeoutMs: ctx.timeoutMs }, ctx.timeoutMs * 2);
      await host.destroyTimeline(tl);
      const r = await waited;
      expect(r.status === -2, `the DUT's fence of a destroyed timeline ended with status ${r.status}, not -ENOENT (-2) (11A.5)`);
    },
  },
  {
    section: '11A.7 Reservation objects on shared buffers', rule: '11A.8', layer: 'dmabuf-sync', name: '11A.8: as exporter, the DUT answers DMABUF_RESV_ADD and DMABUF_RESV_GET of its importer: a write fence added shows in GET until it signals',
    async run(ctx) {
      const ref = ctx.multi;
      const { hid, fd, view } = await dutExportsToRef(ctx, ref, 1);
      const tl = ref.fences.createTimeline('conformance-resv');
      try {
        const fence = tl.createFence(1);
        await ref.sync.addFence(fd, fence, 'write');
        const pending = await ref.sync.pendingFences(fd, 'read');
        expect(pending.length >= 1, `DMABUF_RESV_GET after a write fence was added lists ${pending.length} fences (11A.8)`);
        tl.signal(1);
        await fence.wait(ctx.timeoutMs);
        const after = await ref.sync.pendingFences(fd, 'read');
        expect(after.every((f) => f.fence.isSignaled()), 'DMABUF_RESV_GET still lists an unsignalled fence after it signalled (11A.8)');
      } finally {
        await ref.fences.destroyTimeline(tl);
        await closeFd(fd, view);
        await ctx.dut.agent.call('unexport', { hid }, ctx.timeoutMs);
        await dutFrees(ctx, hid, 'after the check');
      }
    },
  },
];
