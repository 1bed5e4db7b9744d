/**
 * Conformance, SPEC.md section 14: the golden vectors on the wire.
 *
 * Each request vector a backend answers is sent as its exact bytes
 * (protocol/vectors/v1.json), in a state arranged so that the declared
 * response is determined, and the reply must decode (reference codec) to the
 * vector's response, field for field; only values the backend chooses
 * (handles, file paths, the token) are compared by their rules instead.
 * Event vectors of the backend (DOMAIN_UP, EVTCHN_EVENT, DOMAIN_DIED) must
 * arrive exactly as written when the same thing happens. Two vectors need a
 * tweak: HELLO.req carries the sample token, so it is sent once as is (and
 * refused) and once with only the token replaced by the real one.
 *
 * The samples name domains 1 ("render") and 2 ("compositor"): each test
 * creates them with those ids, arranges the state its vector needs, and
 * destroys them at its end (an id is free again once its domain is removed,
 * SPEC 9.1 rule 5), so the tests are independent. Our backend (one per file)
 * always has ids 1 and 2 free; an external target must have them free too.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it, onTestFinished } from 'vitest';
import { GNTMAP, GNTST, INVALID_GRANT_HANDLE, messagesAt, PAGE_SIZE, type Envelope } from '../../protocol/index.ts';
import { fromJsonValue, VECTORS_PATH, type Vector } from '../../protocol/tools/vectors.ts';
import { domainDied, useBackend, type Guest } from './support/harness.ts';
import { packRaw, type ErrBody, type WireClient } from './support/wire.ts';

const hv = useBackend();
const vectors = new Map((JSON.parse(readFileSync(VECTORS_PATH, 'utf8')) as Vector[]).map((v) => [v.name, v]));

function vector(name: string): Vector {
  const v = vectors.get(name);
  if (!v) throw new Error(`no golden vector ${name}`);
  return v;
}
function bytesOf(name: string): Buffer {
  return Buffer.from(vector(name).hex, 'hex');
}
function envelopeOf(name: string): Envelope {
  return fromJsonValue(vector(name).envelope) as Envelope;
}
/** Sends a request vector's exact bytes and resolves with the reply (its id, 17, must not be in flight). */
function sendVector(c: WireClient, name: string, bytes: Uint8Array = bytesOf(name)): Promise<Envelope> {
  const env = envelopeOf(name);
  const reply = c.awaitReply(env.id, name);
  c.sendBytes(bytes);
  return reply;
}
/** The reply must be the vector's response, exactly. */
async function expectVectorReply(c: WireClient, req: string, res: string): Promise<void> {
  expect(await sendVector(c, req), `${req} -> ${res}`).toEqual(envelopeOf(res));
}

/** Which sample domains a test needs, and whether they say HELLO. */
interface SampleOptions { d1?: 'connected' | 'created'; d2?: 'connected' | 'created' | 'none' }

/**
 * Creates domain 1 ("render") and, unless told otherwise, domain 2
 * ("compositor"), with the sample's ids; after the test, checks that they
 * hold no busy grant and no mapping, and destroys them.
 */
async function sampleDomains(opts: SampleOptions = {}): Promise<{ d1: Guest; d2: Guest }> {
  const taken = (await hv.stats()).domains.filter((d) => d.domid === 1 || d.domid === 2);
  if (taken.length > 0) throw new Error(`the vectors name domains 1 and 2: the target must have them free (taken: ${taken.map((d) => d.domid).join(', ')})`);
  onTestFinished(async () => {
    const ours = (await hv.stats()).domains.filter((d) => d.domid === 1 || d.domid === 2);
    expect(ours.filter((d) => d.busyGrants !== 0 || d.mappings !== 0), 'busy grants or mappings left').toEqual([]);
    for (const d of ours.filter((x) => x.state === 'created' || x.state === 'running').reverse()) {
      expect(await hv.control.call('DOMAIN_DESTROY', { domid: d.domid })).toEqual({});
    }
    expect((await hv.stats()).domains.filter((d) => d.domid === 1 || d.domid === 2)).toEqual([]);
  });
  // memPages: the samples use frames 256, 257 (domain 1) and 300 (domain 2).
  const d1 = await hv.guest({ domid: 1, name: 'render', memPages: 512, connect: (opts.d1 ?? 'connected') === 'connected' });
  const d2 = opts.d2 === 'none' ? (undefined as unknown as Guest)
    : await hv.guest({ domid: 2, name: 'compositor', memPages: 512, connect: (opts.d2 ?? 'connected') === 'connected' });
  return { d1, d2 };
}

/** Domain 1's port 1 bound to domain 2's port 3 (domain 2's ports 1 and 2 taken), as the event-channel samples have it. */
async function sampleChannel(d1: Guest, d2: Guest): Promise<void> {
  expect(await d1.client.call('EVTCHN_ALLOC_UNBOUND', { remoteDom: 2 })).toEqual({ port: 1 });
  expect(await d2.client.call('EVTCHN_ALLOC_UNBOUND', { remoteDom: 1 })).toEqual({ port: 1 });
  expect(await d2.client.call('EVTCHN_ALLOC_UNBOUND', { remoteDom: 1 })).toEqual({ port: 2 });
  expect(await d2.client.call('EVTCHN_BIND_INTERDOMAIN', { remoteDom: 1, remotePort: 1 })).toEqual({ localPort: 3 });
}

/** Domain 1 grants refs 8 and 9 read-only to domain 2 at frames 256 and 257, as the grant samples have it. */
function sampleGrants(d1: Guest): void {
  d1.table.publish(8, 2, 256, true);
  d1.table.publish(9, 2, 257, true);
}

describe('SPEC 14 golden vectors on the wire', () => {
  it('HELLO.req as is (the sample token) is refused: ERR_BAD_TOKEN for domain 1 with its id and type, then close 1008', async () => {
    await sampleDomains({ d1: 'created', d2: 'none' });
    const c = await hv.open('hello-vector');
    const reply = await sendVector(c, 'HELLO.req');
    expect(reply).toMatchObject({ v: 1, kind: 'err', type: 'HELLO', id: 17, body: { code: 'ERR_BAD_TOKEN' } });
    expect(await c.closeCode()).toBe(1008);
    expect(await hv.statsOf(1)).toMatchObject({ state: 'created', connected: false });
  });

  it('HELLO.req with only the token replaced gets exactly HELLO.res', async () => {
    const { d1 } = await sampleDomains({ d1: 'created', d2: 'none' });
    const sampleToken = (envelopeOf('HELLO.req').body as { token: string }).token;
    const hex = bytesOf('HELLO.req').toString('hex');
    const tokenHex = Buffer.from(packRaw(sampleToken)).toString('hex');
    expect(hex.split(tokenHex)).toHaveLength(2);
    const spliced = Buffer.from(hex.replace(tokenHex, Buffer.from(packRaw(d1.token)).toString('hex')), 'hex');
    const c = await hv.open('d1');
    expect(await sendVector(c, 'HELLO.req', spliced)).toEqual(envelopeOf('HELLO.res'));
    expect(await hv.statsOf(1)).toMatchObject({ state: 'running', connected: true });
  });

  it('DOMAIN_UP.evt: when domain 2 ("compositor") says HELLO, domain 1 receives exactly the vector', async () => {
    const { d1, d2 } = await sampleDomains({ d2: 'created' });
    const up = d1.client.nextEvent<{ domid: number }>('DOMAIN_UP', (b) => b.domid === 2);
    await d2.connect();
    const expected = envelopeOf('DOMAIN_UP.evt');
    const got = await up;
    // `name` is optional (SPEC 12): a backend may leave it out, but not change it.
    if (!('name' in got.body)) delete (expected.body as { name?: string }).name;
    expect(got).toEqual(expected);
  });

  it('PING.req gets exactly PING.res', async () => {
    const { d1 } = await sampleDomains({ d2: 'none' });
    await expectVectorReply(d1.client, 'PING.req', 'PING.res');
  });

  it('GNTTAB_QUERY_SIZE.req gets exactly GNTTAB_QUERY_SIZE.res (a new table of the default limit)', async () => {
    const { d1 } = await sampleDomains({ d2: 'none' });
    await expectVectorReply(d1.client, 'GNTTAB_QUERY_SIZE.req', 'GNTTAB_QUERY_SIZE.res');
  });

  it('GNTTAB_SETUP_TABLE.req gets exactly GNTTAB_SETUP_TABLE.res', async () => {
    const { d1 } = await sampleDomains({ d2: 'none' });
    await expectVectorReply(d1.client, 'GNTTAB_SETUP_TABLE.req', 'GNTTAB_SETUP_TABLE.res');
  });

  it('EVTCHN_ALLOC_UNBOUND.req gets exactly EVTCHN_ALLOC_UNBOUND.res (port 1 of domain 1, for domain 2)', async () => {
    const { d1 } = await sampleDomains();
    await expectVectorReply(d1.client, 'EVTCHN_ALLOC_UNBOUND.req', 'EVTCHN_ALLOC_UNBOUND.res');
  });

  it('EVTCHN_BIND_INTERDOMAIN.req from domain 2 (ports 1 and 2 already in use) gets exactly EVTCHN_BIND_INTERDOMAIN.res (port 3)', async () => {
    const { d1, d2 } = await sampleDomains();
    expect(await d1.client.call('EVTCHN_ALLOC_UNBOUND', { remoteDom: 2 })).toEqual({ port: 1 });
    expect(await d2.client.call('EVTCHN_ALLOC_UNBOUND', { remoteDom: 1 })).toEqual({ port: 1 });
    expect(await d2.client.call('EVTCHN_ALLOC_UNBOUND', { remoteDom: 1 })).toEqual({ port: 2 });
    await expectVectorReply(d2.client, 'EVTCHN_BIND_INTERDOMAIN.req', 'EVTCHN_BIND_INTERDOMAIN.res');
  });

  it('EVTCHN_STATUS.req from domain 1 gets exactly EVTCHN_STATUS.res', async () => {
    const { d1, d2 } = await sampleDomains();
    await sampleChannel(d1, d2);
    await expectVectorReply(d1.client, 'EVTCHN_STATUS.req', 'EVTCHN_STATUS.res');
  });

  it('EVTCHN_SEND.req from domain 2 gets exactly EVTCHN_SEND.res, and domain 1 receives exactly EVTCHN_EVENT.evt', async () => {
    const { d1, d2 } = await sampleDomains();
    await sampleChannel(d1, d2);
    const event = d1.client.nextEvent('EVTCHN_EVENT');
    await expectVectorReply(d2.client, 'EVTCHN_SEND.req', 'EVTCHN_SEND.res');
    expect(await event).toEqual(envelopeOf('EVTCHN_EVENT.evt'));
  });

  it('EVTCHN_CLOSE.req from domain 2 gets exactly EVTCHN_CLOSE.res', async () => {
    const { d1, d2 } = await sampleDomains();
    await sampleChannel(d1, d2);
    await expectVectorReply(d2.client, 'EVTCHN_CLOSE.req', 'EVTCHN_CLOSE.res');
    expect(await d1.client.call('EVTCHN_STATUS', { port: 1 })).toEqual({ state: 'unbound', remoteDom: 2 });
  });

  it('GNTTAB_MAP_GRANT_REF.req from domain 2 gets GNTTAB_MAP_GRANT_REF.res (statuses and frames exactly; handles valid; ramPath domain 1\'s RAM)', async () => {
    const { d1, d2 } = await sampleDomains();
    const req = envelopeOf('GNTTAB_MAP_GRANT_REF.req').body as { dom: number; flags: number; refs: number[] };
    const res = envelopeOf('GNTTAB_MAP_GRANT_REF.res');
    const want = res.body as { status: number[]; handle: number[]; frame: number[] };
    expect(req).toEqual({ dom: 1, flags: GNTMAP.host_map | GNTMAP.readonly, refs: [8, 9, 70000] });
    sampleGrants(d1);
    const reply = await sendVector(d2.client, 'GNTTAB_MAP_GRANT_REF.req');
    const body = reply.body as { status: number[]; handle: number[]; frame: number[]; ramPath: string };
    expect({ ...reply, body: { ...body, handle: [], ramPath: '' } }).toEqual({ ...res, body: { ...want, handle: [], ramPath: '' } });
    expect(body.ramPath).toBe(d1.ramPath);
    body.status.forEach((s, i) => {
      if (s === GNTST.okay) expect(body.handle[i]).not.toBeOneOf([0, INVALID_GRANT_HANDLE]);
      else expect(body.handle[i]).toBe(INVALID_GRANT_HANDLE);
    });
    const held = body.handle.filter((h) => h !== INVALID_GRANT_HANDLE);
    expect(await d2.client.call('GNTTAB_UNMAP_GRANT_REF', { handles: held })).toEqual({ status: held.map(() => GNTST.okay) });
  });

  it('GNTTAB_COPY.req from domain 2 gets exactly GNTTAB_COPY.res, and the bytes land where it says', async () => {
    const { d1, d2 } = await sampleDomains();
    sampleGrants(d1);
    const op = (envelopeOf('GNTTAB_COPY.req').body as { ops: { source: { ref: number; offset: number }; dest: { ref: number; offset: number }; len: number }[] }).ops[0]!;
    expect(op.source.ref).toBe(8);
    // Source: domain 1's grant ref 8 (frame 256); destination: domain 2's own frame.
    const srcFrame = 256;
    for (let i = 0; i < PAGE_SIZE; i++) d1.ram[srcFrame * PAGE_SIZE + i] = (i * 7 + 1) & 0xff;
    await expectVectorReply(d2.client, 'GNTTAB_COPY.req', 'GNTTAB_COPY.res');
    const at = op.dest.ref * PAGE_SIZE + op.dest.offset;
    const from = srcFrame * PAGE_SIZE + op.source.offset;
    expect(Buffer.compare(d2.ram.subarray(at, at + op.len), d1.ram.subarray(from, from + op.len))).toBe(0);
    expect(d2.ram[at + op.len]).toBe(0);
  });

  it('GNTTAB_UNMAP_GRANT_REF.req from domain 2 gets a GNTTAB_UNMAP_GRANT_REF.res: okay for the handles it holds, bad_handle for the others', async () => {
    const { d1, d2 } = await sampleDomains();
    sampleGrants(d1);
    const m = await d2.client.call<{ status: number[]; handle: number[] }>('GNTTAB_MAP_GRANT_REF', { dom: 1, flags: GNTMAP.host_map | GNTMAP.readonly, refs: [8, 9] });
    expect(m.status).toEqual([GNTST.okay, GNTST.okay]);
    const sent = (envelopeOf('GNTTAB_UNMAP_GRANT_REF.req').body as { handles: number[] }).handles;
    const reply = await sendVector(d2.client, 'GNTTAB_UNMAP_GRANT_REF.req');
    const res = envelopeOf('GNTTAB_UNMAP_GRANT_REF.res');
    expect({ ...reply, body: {} }).toEqual({ ...res, body: {} });
    // Handles are the backend's choice: the sample's are okay only if they are the ones it issued.
    expect((reply.body as { status: number[] }).status).toEqual(sent.map((h) => (m.handle.includes(h) ? GNTST.okay : GNTST.bad_handle)));
    const rest = m.handle.filter((h) => !sent.includes(h));
    expect(await d2.client.call('GNTTAB_UNMAP_GRANT_REF', { handles: rest })).toEqual({ status: rest.map(() => GNTST.okay) });
  });

  it('DOMAIN_DIED.evt: domain 2, holding three mappings, disconnects; domain 1 receives exactly the vector', async () => {
    const { d1, d2 } = await sampleDomains();
    sampleGrants(d1);
    const m = await d2.client.call<{ status: number[] }>('GNTTAB_MAP_GRANT_REF', { dom: 1, flags: GNTMAP.host_map | GNTMAP.readonly, refs: [8, 9, 8] });
    expect(m.status).toEqual([0, 0, 0]);
    const died = d1.client.nextEvent<{ domid: number }>('DOMAIN_DIED', (b) => b.domid === 2);
    d2.client.terminate();
    expect(await died).toEqual(envelopeOf('DOMAIN_DIED.evt'));
  });

  it('HV_STATS.req gets HV_STATS.res: domain 1 exactly as the sample, with its two files', async () => {
    const { d1 } = await sampleDomains({ d2: 'none' });
    const reply = await sendVector(hv.control, 'HV_STATS.req');
    const res = envelopeOf('HV_STATS.res');
    const body = reply.body as { domains: { domid: number }[]; shmFiles: string[]; routedPending: number };
    const want = res.body as { domains: { domid: number }[]; shmFiles: string[] };
    expect({ ...reply, body: {} }).toEqual({ ...res, body: {} });
    expect(body.domains.filter((d) => d.domid === 1 || d.domid === 2)).toEqual(want.domains);
    expect(body.shmFiles.filter((f) => f === d1.ramPath || f === d1.grantTablePath).sort()).toEqual([d1.grantTablePath, d1.ramPath].sort());
    expect(body.routedPending).toBe(0);
  });

  it('DOMAIN_CREATE.req gets a DOMAIN_CREATE.res (limit 64 as in the sample; id, token and paths the backend\'s own)', async () => {
    const reply = await sendVector(hv.control, 'DOMAIN_CREATE.req');
    const res = envelopeOf('DOMAIN_CREATE.res');
    const body = reply.body as { domid: number; token: string; ramPath: string; grantTablePath: string; maxGrantFrames: number };
    expect({ ...reply, body: {} }).toEqual({ ...res, body: {} });
    expect(body.maxGrantFrames).toBe((res.body as { maxGrantFrames: number }).maxGrantFrames);
    expect(body.token.length).toBeGreaterThan(0);
    expect(await hv.statsOf(body.domid)).toMatchObject({ name: 'render', state: 'created' });
    expect(await hv.control.call('DOMAIN_DESTROY', { domid: body.domid })).toEqual({});
    expect(await hv.statsOf(body.domid)).toBeUndefined();
  });

  it('DOMAIN_DESTROY.req gets exactly DOMAIN_DESTROY.res', async () => {
    const { d1 } = await sampleDomains({ d2: 'created' });
    const died = domainDied(d1.client, 2);
    await expectVectorReply(hv.control, 'DOMAIN_DESTROY.req', 'DOMAIN_DESTROY.res');
    expect(await died).toEqual({ domid: 2, reason: 'destroyed', mappingsReleased: 0 });
    expect(await hv.statsOf(2)).toBeUndefined();
  });

  it('PROTOCOL_ERROR.evt from a domain is addressed to the backend: no answer, the connection serves on', async () => {
    const { d1 } = await sampleDomains({ d2: 'none' });
    d1.client.sendBytes(bytesOf('PROTOCOL_ERROR.evt'));
    expect(await d1.client.call('PING', { nonce: 3 })).toEqual({ nonce: 3 });
    expect(d1.client.unclaimed().filter((e) => e.type === 'PROTOCOL_ERROR')).toEqual([]);
  });

  it('DOMAIN_UP.evt, DOMAIN_DIED.evt and EVTCHN_EVENT.evt sent by a domain get PROTOCOL_ERROR ERR_WRONG_DIRECTION (events of the backend)', async () => {
    const { d1 } = await sampleDomains();
    for (const name of ['DOMAIN_UP.evt', 'DOMAIN_DIED.evt', 'EVTCHN_EVENT.evt']) {
      const answer = d1.client.nextProtocolError();
      d1.client.sendBytes(bytesOf(name));
      expect((await answer).body, name).toMatchObject({ code: 'ERR_WRONG_DIRECTION', type: envelopeOf(name).type } satisfies Partial<ErrBody>);
    }
    expect(await hv.statsOf(2)).toMatchObject({ state: 'running' });
  });

  it('covers every request vector the backend answers and every event vector it sends', () => {
    const hvVectors = [...messagesAt(1).values()].flatMap((decl) => {
      if (decl.kind === 'request') return decl.route === 'hv' ? [`${decl.type}.req`, `${decl.type}.res`] : [];
      return decl.from === 'hv' ? [`${decl.type}.evt`] : [];
    });
    // Read from this file's source, so the check does not depend on which tests ran.
    const source = readFileSync(new URL(import.meta.url), 'utf8');
    expect(hvVectors.filter((n) => !source.includes(`'${n}'`))).toEqual([]);
  });
});
