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
 * The samples name domains 1 ("render") and 2 ("compositor"): this file
 * creates them with those ids, which our backend (one per file) always has
 * free. An external target must have ids 1 and 2 free for this file.
 *
 * The tests run in order and build on each other, like the vectors' story.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { GNTMAP, GNTST, INVALID_GRANT_HANDLE, messages, PAGE_SIZE, type Envelope } from '../../protocol/index.ts';
import { fromJsonValue, VECTORS_PATH, type Vector } from '../../protocol/tools/vectors.ts';
import { domainDied, useBackend, type Guest } from './support/harness.ts';
import { packRaw, type ErrBody, type WireClient } from './support/wire.ts';

const hv = useBackend();
const vectors = new Map((JSON.parse(readFileSync(VECTORS_PATH, 'utf8')) as Vector[]).map((v) => [v.name, v]));
/** Vectors this file put on the wire or received. */
const exercised = new Set<string>();

function vector(name: string): Vector {
  const v = vectors.get(name);
  if (!v) throw new Error(`no golden vector ${name}`);
  exercised.add(name);
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

let d1: Guest;
let d2: Guest;
/** Handles d2 holds of d1's grants. */
let held: number[] = [];

describe('SPEC 14 golden vectors on the wire', () => {
  beforeAll(async () => {
    const taken = (await hv.stats()).domains.filter((d) => d.domid === 1 || d.domid === 2);
    if (taken.length > 0) throw new Error(`the vectors name domains 1 and 2: the target must have them free (taken: ${taken.map((d) => d.domid).join(', ')})`);
    // memPages: the samples use frames 256, 257 (d1) and 300 (d2).
    d1 = await hv.guest({ domid: 1, name: 'render', memPages: 512, connect: false });
    d2 = await hv.guest({ domid: 2, name: 'compositor', memPages: 512, connect: false });
  });

  it('HELLO.req as is (the sample token) is refused: ERR_BAD_TOKEN for domain 1 with its id and type, then close 1008', async () => {
    const c = await hv.open('hello-vector');
    const reply = await sendVector(c, 'HELLO.req');
    expect(reply).toMatchObject({ v: 1, kind: 'err', type: 'HELLO', id: 17, body: { code: 'ERR_BAD_TOKEN' } });
    expect(await c.closeCode()).toBe(1008);
    expect(await hv.statsOf(1)).toMatchObject({ state: 'created', connected: false });
  });

  it('HELLO.req with only the token replaced gets exactly HELLO.res', async () => {
    const sampleToken = (envelopeOf('HELLO.req').body as { token: string }).token;
    const hex = bytesOf('HELLO.req').toString('hex');
    const tokenHex = Buffer.from(packRaw(sampleToken)).toString('hex');
    expect(hex.split(tokenHex)).toHaveLength(2);
    const spliced = Buffer.from(hex.replace(tokenHex, Buffer.from(packRaw(d1.token)).toString('hex')), 'hex');
    const c = await hv.open('d1');
    expect(await sendVector(c, 'HELLO.req', spliced)).toEqual(envelopeOf('HELLO.res'));
    c.domid = 1;
    d1.client = c;
  });

  it('DOMAIN_UP.evt: when domain 2 ("compositor") says HELLO, domain 1 receives exactly the vector', async () => {
    const up = d1.client.nextEvent<{ domid: number }>('DOMAIN_UP', (b) => b.domid === 2);
    await d2.connect();
    const expected = envelopeOf('DOMAIN_UP.evt');
    const got = await up;
    // `name` is optional (SPEC 12): a backend may leave it out, but not change it.
    if (!('name' in got.body)) delete (expected.body as { name?: string }).name;
    expect(got).toEqual(expected);
  });

  it('PING.req gets exactly PING.res', async () => {
    await expectVectorReply(d1.client, 'PING.req', 'PING.res');
  });

  it('GNTTAB_QUERY_SIZE.req gets exactly GNTTAB_QUERY_SIZE.res (a new table of the default limit)', async () => {
    await expectVectorReply(d1.client, 'GNTTAB_QUERY_SIZE.req', 'GNTTAB_QUERY_SIZE.res');
  });

  it('GNTTAB_SETUP_TABLE.req gets exactly GNTTAB_SETUP_TABLE.res', async () => {
    await expectVectorReply(d1.client, 'GNTTAB_SETUP_TABLE.req', 'GNTTAB_SETUP_TABLE.res');
  });

  it('EVTCHN_ALLOC_UNBOUND.req gets exactly EVTCHN_ALLOC_UNBOUND.res (port 1 of domain 1, for domain 2)', async () => {
    await expectVectorReply(d1.client, 'EVTCHN_ALLOC_UNBOUND.req', 'EVTCHN_ALLOC_UNBOUND.res');
  });

  it('EVTCHN_BIND_INTERDOMAIN.req from domain 2 (ports 1 and 2 already in use) gets exactly EVTCHN_BIND_INTERDOMAIN.res (port 3)', async () => {
    expect(await d2.client.call('EVTCHN_ALLOC_UNBOUND', { remoteDom: 1 })).toEqual({ port: 1 });
    expect(await d2.client.call('EVTCHN_ALLOC_UNBOUND', { remoteDom: 1 })).toEqual({ port: 2 });
    await expectVectorReply(d2.client, 'EVTCHN_BIND_INTERDOMAIN.req', 'EVTCHN_BIND_INTERDOMAIN.res');
  });

  it('EVTCHN_STATUS.req from domain 1 gets exactly EVTCHN_STATUS.res', async () => {
    await expectVectorReply(d1.client, 'EVTCHN_STATUS.req', 'EVTCHN_STATUS.res');
  });

  it('EVTCHN_SEND.req from domain 2 gets exactly EVTCHN_SEND.res, and domain 1 receives exactly EVTCHN_EVENT.evt', async () => {
    const event = d1.client.nextEvent('EVTCHN_EVENT');
    await expectVectorReply(d2.client, 'EVTCHN_SEND.req', 'EVTCHN_SEND.res');
    expect(await event).toEqual(envelopeOf('EVTCHN_EVENT.evt'));
  });

  it('EVTCHN_CLOSE.req from domain 2 gets exactly EVTCHN_CLOSE.res', async () => {
    await expectVectorReply(d2.client, 'EVTCHN_CLOSE.req', 'EVTCHN_CLOSE.res');
    expect(await d1.client.call('EVTCHN_STATUS', { port: 1 })).toEqual({ state: 'unbound', remoteDom: 2 });
  });

  it('GNTTAB_MAP_GRANT_REF.req from domain 2 gets GNTTAB_MAP_GRANT_REF.res (statuses and frames exactly; handles valid; ramPath domain 1\'s RAM)', async () => {
    const req = envelopeOf('GNTTAB_MAP_GRANT_REF.req').body as { dom: number; flags: number; refs: number[] };
    const res = envelopeOf('GNTTAB_MAP_GRANT_REF.res');
    const want = res.body as { status: number[]; handle: number[]; frame: number[] };
    expect(req.dom).toBe(1);
    expect(req.flags).toBe(GNTMAP.host_map | GNTMAP.readonly);
    // Domain 1 grants refs 8 and 9 read-only to domain 2, at the frames of the sample.
    req.refs.forEach((ref, i) => { if (want.status[i] === GNTST.okay) d1.table.publish(ref, 2, want.frame[i]!, true); });
    const reply = await sendVector(d2.client, 'GNTTAB_MAP_GRANT_REF.req');
    const body = reply.body as { status: number[]; handle: number[]; frame: number[]; ramPath: string };
    expect({ ...reply, body: { ...body, handle: [], ramPath: '' } }).toEqual({ ...res, body: { ...want, handle: [], ramPath: '' } });
    expect(body.ramPath).toBe(d1.ramPath);
    body.status.forEach((s, i) => {
      if (s === GNTST.okay) expect(body.handle[i]).not.toBeOneOf([0, INVALID_GRANT_HANDLE]);
      else expect(body.handle[i]).toBe(INVALID_GRANT_HANDLE);
    });
    held = body.handle.filter((h) => h !== INVALID_GRANT_HANDLE);
  });

  it('GNTTAB_COPY.req from domain 2 gets exactly GNTTAB_COPY.res, and the bytes land where it says', async () => {
    const op = (envelopeOf('GNTTAB_COPY.req').body as { ops: { source: { ref: number; offset: number }; dest: { ref: number; offset: number }; len: number }[] }).ops[0]!;
    // Source: domain 1's grant ref 8 (frame 256); destination: domain 2's own frame 300.
    const srcFrame = 256;
    for (let i = 0; i < PAGE_SIZE; i++) d1.ram[srcFrame * PAGE_SIZE + i] = (i * 7 + 1) & 0xff;
    await expectVectorReply(d2.client, 'GNTTAB_COPY.req', 'GNTTAB_COPY.res');
    const at = op.dest.ref * PAGE_SIZE + op.dest.offset;
    expect(Buffer.compare(d2.ram.subarray(at, at + op.len), d1.ram.subarray(srcFrame * PAGE_SIZE + op.source.offset, srcFrame * PAGE_SIZE + op.source.offset + op.len))).toBe(0);
    expect(d2.ram[at + op.len]).toBe(0);
  });

  it('GNTTAB_UNMAP_GRANT_REF.req from domain 2 gets a GNTTAB_UNMAP_GRANT_REF.res: okay for the handles it holds, bad_handle for the others', async () => {
    const sent = (envelopeOf('GNTTAB_UNMAP_GRANT_REF.req').body as { handles: number[] }).handles;
    const reply = await sendVector(d2.client, 'GNTTAB_UNMAP_GRANT_REF.req');
    const res = envelopeOf('GNTTAB_UNMAP_GRANT_REF.res');
    expect({ ...reply, body: {} }).toEqual({ ...res, body: {} });
    expect((reply.body as { status: number[] }).status).toEqual(sent.map((h) => (held.includes(h) ? GNTST.okay : GNTST.bad_handle)));
    held = held.filter((h) => !sent.includes(h));
    const rest = await d2.client.call<{ status: number[] }>('GNTTAB_UNMAP_GRANT_REF', { handles: held });
    expect(rest.status.every((s) => s === GNTST.okay)).toBe(true);
  });

  it('DOMAIN_DIED.evt: domain 2, holding three mappings, disconnects; domain 1 receives exactly the vector', async () => {
    const m = await d2.client.call<{ status: number[] }>('GNTTAB_MAP_GRANT_REF', { dom: 1, flags: GNTMAP.host_map | GNTMAP.readonly, refs: [8, 9, 8] });
    expect(m.status).toEqual([0, 0, 0]);
    const died = d1.client.nextEvent<{ domid: number }>('DOMAIN_DIED', (b) => b.domid === 2);
    d2.client.terminate();
    expect(await died).toEqual(envelopeOf('DOMAIN_DIED.evt'));
  });

  it('HV_STATS.req gets HV_STATS.res: domain 1 exactly as the sample, with its two files', async () => {
    // Domain 1 gives up its grants and its port, to be the sample's idle running domain.
    expect([d1.table.endAccess(8), d1.table.endAccess(9)]).toEqual(['ended', 'ended']);
    expect(await d1.client.call('EVTCHN_CLOSE', { port: 1 })).toEqual({});
    const reply = await sendVector(hv.control, 'HV_STATS.req');
    const res = envelopeOf('HV_STATS.res');
    const body = reply.body as { domains: { domid: number }[]; shmFiles: string[]; routedPending: number };
    const want = res.body as { domains: { domid: number }[]; shmFiles: string[] };
    expect({ ...reply, body: {} }).toEqual({ ...res, body: {} });
    expect(body.domains.filter((d) => d.domid === 1 || d.domid === 2)).toEqual(want.domains);
    expect(body.shmFiles.filter((f) => f === d1.ramPath || f === d1.grantTablePath).sort()).toEqual([d1.grantTablePath, d1.ramPath].sort());
    expect(body.shmFiles.filter((f) => f === d2.ramPath || f === d2.grantTablePath)).toEqual([]);
    expect(body.routedPending).toBe(0);
  });

  it('DOMAIN_CREATE.req gets a DOMAIN_CREATE.res (limit 64 as in the sample; id, token and paths the backend\'s own)', async () => {
    const reply = await sendVector(hv.control, 'DOMAIN_CREATE.req');
    const res = envelopeOf('DOMAIN_CREATE.res');
    const body = reply.body as { domid: number; token: string; ramPath: string; grantTablePath: string; maxGrantFrames: number };
    expect({ ...reply, body: {} }).toEqual({ ...res, body: {} });
    expect(body.maxGrantFrames).toBe((res.body as { maxGrantFrames: number }).maxGrantFrames);
    expect(body.domid).not.toBe(1);
    expect(body.token.length).toBeGreaterThan(0);
    expect(await hv.statsOf(body.domid)).toMatchObject({ name: 'render', state: 'created' });
    expect(await hv.control.call('DOMAIN_DESTROY', { domid: body.domid })).toEqual({});
  });

  it('DOMAIN_DESTROY.req gets exactly DOMAIN_DESTROY.res (domain 2 created again: its id is free once removed)', async () => {
    const again = await hv.control.call<{ domid: number }>('DOMAIN_CREATE', { name: 'compositor', memPages: 1, domid: 2 });
    expect(again.domid).toBe(2);
    const died = domainDied(d1.client, 2);
    await expectVectorReply(hv.control, 'DOMAIN_DESTROY.req', 'DOMAIN_DESTROY.res');
    expect(await died).toEqual({ domid: 2, reason: 'destroyed', mappingsReleased: 0 });
    expect(await hv.statsOf(2)).toBeUndefined();
  });

  it('PROTOCOL_ERROR.evt from a domain is addressed to the backend: no answer, the connection serves on', async () => {
    d1.client.sendBytes(bytesOf('PROTOCOL_ERROR.evt'));
    expect(await d1.client.call('PING', { nonce: 3 })).toEqual({ nonce: 3 });
    expect(d1.client.unclaimed().filter((e) => e.type === 'PROTOCOL_ERROR')).toEqual([]);
  });

  it('DOMAIN_UP.evt, DOMAIN_DIED.evt and EVTCHN_EVENT.evt sent by a domain get PROTOCOL_ERROR ERR_WRONG_DIRECTION (events of the backend)', async () => {
    for (const name of ['DOMAIN_UP.evt', 'DOMAIN_DIED.evt', 'EVTCHN_EVENT.evt']) {
      const answer = d1.client.nextProtocolError();
      d1.client.sendBytes(bytesOf(name));
      expect((await answer).body, name).toMatchObject({ code: 'ERR_WRONG_DIRECTION', type: envelopeOf(name).type } satisfies Partial<ErrBody>);
    }
  });

  it('covers every request vector the backend answers and every event vector it sends', () => {
    const hvVectors = [...messages.values()].flatMap((decl) => {
      if (decl.kind === 'request') return decl.route === 'hv' ? [`${decl.type}.req`, `${decl.type}.res`] : [];
      return decl.from === 'hv' ? [`${decl.type}.evt`] : [];
    });
    expect(hvVectors.filter((n) => !exercised.has(n))).toEqual([]);
  });
});
