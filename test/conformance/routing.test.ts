/**
 * Conformance, SPEC.md section 6 (requests, routing, events) and 6.1 rules
 * 3-8: routed requests reach their destination with the true source
 * stamped, replies come back only from where the request went, the
 * backend's own refusals of a routed request carry no `src`, and a pending
 * routed request gets ERR_PEER_GONE when its destination dies.
 *
 * ECHO (domain -> domain, routed) is the routed request, and
 * DMABUF_EXPORT_FD_FAILED the routed event: the backend routes them without
 * reading their bodies beyond the declaration. Every check runs over
 * protocol v1 and v2 (the backend speaks both, SPEC 15): the domains say
 * HELLO offering 1..v and send every frame in the version negotiated.
 */
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../protocol/index.ts';
import { domainDied, useBackend, type Guest, type GuestOptions } from './support/harness.ts';
import type { ErrBody, WireClient } from './support/wire.ts';

const hv = useBackend();

const bytes = (...v: number[]) => Uint8Array.from(v);
const failedEvent = (dom: number) => ({ hid: { dom, cnt: 1, key: new Uint8Array(16) }, fdId: 9 });

/** B answers a forwarded request (kind res, its id, addressed back to the requester). */
function answer(b: WireClient, fwd: Envelope, body: Record<string, unknown>, extra: Partial<Envelope> = {}): void {
  b.send({ v: b.version, kind: 'res', type: fwd.type, id: fwd.id, dst: fwd.src!, body, ...extra });
}

/** Nothing more arrived on `c` about routed traffic: a PING barrier, then no reply or PROTOCOL_ERROR left unclaimed. */
async function nothingMore(c: WireClient): Promise<void> {
  expect(await c.call('PING', { nonce: 9 })).toEqual({ nonce: 9 });
  expect(c.unclaimed().filter((e) => e.kind === 'res' || e.kind === 'err' || e.type === 'PROTOCOL_ERROR' || e.type === 'ECHO')).toEqual([]);
}

describe('SPEC 6 routing', () => describe.each([1, 2])('over protocol v%i', (version) => {
  const guest = async (o: GuestOptions = {}): Promise<Guest> => {
    const g = await hv.guest({ ...o, maxVersion: version });
    if (o.connect !== false) expect(g.client.version, 'the version HELLO chose').toBe(version);
    return g;
  };
  const pair = async (): Promise<[Guest, Guest]> => [await guest(), await guest()];

  it('6, 6.1.5: a routed request reaches dst with src stamped and an id of the backend\'s; the reply comes back with src = dst and the requester\'s id', async () => {
    const [a, b] = await pair();
    const reply = a.client.request('ECHO', { payload: bytes(1, 2, 3) }, { id: 7, dst: b.domid });
    const fwd = await b.client.nextRequest('ECHO');
    expect(fwd).toMatchObject({ kind: 'req', type: 'ECHO', src: a.domid, body: { payload: bytes(1, 2, 3) } });
    if (fwd.dst !== undefined) expect(fwd.dst).toBe(b.domid);
    expect((await hv.stats()).routedPending).toBe(1);
    answer(b.client, fwd, { payload: bytes(3, 2, 1) });
    expect(await reply).toMatchObject({ kind: 'res', type: 'ECHO', id: 7, src: b.domid, body: { payload: bytes(3, 2, 1) } });
    expect((await hv.stats()).routedPending).toBe(0);
    // The destination may omit dst on its reply.
    const second = a.client.request('ECHO', { payload: bytes(4) }, { dst: b.domid });
    const fwd2 = await b.client.nextRequest('ECHO');
    b.client.send({ v: b.client.version, kind: 'res', type: 'ECHO', id: fwd2.id, body: { payload: bytes(5) } });
    expect(await second).toMatchObject({ kind: 'res', src: b.domid, body: { payload: bytes(5) } });
  });

  it('6: many routed requests may be in flight on one connection, and replies may come in any order', async () => {
    const [a, b] = await pair();
    const replies = [1, 2, 3].map((n) => a.client.request('ECHO', { payload: bytes(n) }, { id: 100 + n, dst: b.domid }));
    const fwds = [await b.client.nextRequest('ECHO'), await b.client.nextRequest('ECHO'), await b.client.nextRequest('ECHO')];
    expect(new Set(fwds.map((f) => f.id)).size).toBe(3);
    for (const f of [...fwds].reverse()) answer(b.client, f, { payload: (f.body as { payload: Uint8Array }).payload });
    for (const [i, r] of replies.entries()) expect(await r).toMatchObject({ kind: 'res', id: 101 + i, src: b.domid, body: { payload: bytes(i + 1) } });
  });

  it('6.1.5: requests with the same id from two requesters reach one destination under distinct ids and each reply goes to its requester', async () => {
    const a = await guest();
    const c = await guest();
    const b = await guest();
    const ra = a.client.request('ECHO', { payload: bytes(0xa) }, { id: 55, dst: b.domid });
    const rc = c.client.request('ECHO', { payload: bytes(0xc) }, { id: 55, dst: b.domid });
    const f1 = await b.client.nextRequest('ECHO');
    const f2 = await b.client.nextRequest('ECHO');
    expect(f1.id).not.toBe(f2.id);
    expect(new Set([f1.src, f2.src])).toEqual(new Set([a.domid, c.domid]));
    for (const f of [f2, f1]) answer(b.client, f, { payload: (f.body as { payload: Uint8Array }).payload });
    expect(await ra).toMatchObject({ kind: 'res', id: 55, src: b.domid, body: { payload: bytes(0xa) } });
    expect(await rc).toMatchObject({ kind: 'res', id: 55, src: b.domid, body: { payload: bytes(0xc) } });
  });

  it('6: an err reply of the destination is forwarded with src = dst (only the backend sends err without src)', async () => {
    const [a, b] = await pair();
    const reply = a.client.request('ECHO', { payload: bytes() }, { dst: b.domid });
    const fwd = await b.client.nextRequest('ECHO');
    b.client.send({ v: b.client.version, kind: 'err', type: 'ECHO', id: fwd.id, dst: a.domid, body: { code: 'ERR_BAD_ARGUMENT', message: 'no echo today' } });
    expect(await reply).toMatchObject({ kind: 'err', src: b.domid, body: { code: 'ERR_BAD_ARGUMENT', message: 'no echo today' } });
  });

  it('6.1.6: a reply is forwarded only from the domain the request went to, with its type and forwarded id, addressed to the requester; anything else is dropped without an answer', async () => {
    const a = await guest();
    const b = await guest();
    const intruder = await guest();
    const reply = a.client.request('ECHO', { payload: bytes(1) }, { id: 77, dst: b.domid });
    const fwd = await b.client.nextRequest('ECHO');
    // Another domain answering the forwarded id.
    intruder.client.send({ v: intruder.client.version, kind: 'res', type: 'ECHO', id: fwd.id, dst: a.domid, body: { payload: bytes(0xee) } });
    // The destination answering with another type, another id, or to another domain.
    const peerHello = { format: 'multilevel', formats: ['multilevel'], maxPriv: 4096, maxPages: 1 };
    b.client.send({ v: b.client.version, kind: 'res', type: 'DMABUF_PEER_HELLO', id: fwd.id, dst: a.domid, body: peerHello });
    b.client.send({ v: b.client.version, kind: 'res', type: 'ECHO', id: (fwd.id + 1000) >>> 0, dst: a.domid, body: { payload: bytes(0xee) } });
    b.client.send({ v: b.client.version, kind: 'res', type: 'ECHO', id: fwd.id, dst: intruder.domid, body: { payload: bytes(0xee) } });
    await nothingMore(intruder.client);
    await nothingMore(b.client);
    answer(b.client, fwd, { payload: bytes(2) });
    expect(await reply).toMatchObject({ kind: 'res', id: 77, src: b.domid, body: { payload: bytes(2) } });
    await nothingMore(a.client);
    expect((await hv.stats()).routedPending).toBe(0);
  });

  it('6.1.3: a src naming another domain gets ERR_SPOOFED_SOURCE (err for a request, PROTOCOL_ERROR for an event or reply); the sender\'s own id is accepted', async () => {
    const [a, b] = await pair();
    const ping = await a.client.refused('PING', { nonce: 1 }, { src: b.domid });
    expect(ping.body.code).toBe('ERR_SPOOFED_SOURCE');
    const echo = await a.client.refused('ECHO', { payload: bytes() }, { src: b.domid, dst: b.domid });
    expect(echo.body.code).toBe('ERR_SPOOFED_SOURCE');
    expect(echo.src).toBeUndefined();
    a.client.send({ v: a.client.version, kind: 'evt', type: 'DMABUF_EXPORT_FD_FAILED', id: 0, src: b.domid, dst: b.domid, body: failedEvent(b.domid) });
    expect((await a.client.nextProtocolError()).body).toMatchObject({ code: 'ERR_SPOOFED_SOURCE' });
    a.client.send({ v: a.client.version, kind: 'res', type: 'ECHO', id: 3, src: 0, body: { payload: bytes() } });
    expect((await a.client.nextProtocolError()).body).toMatchObject({ code: 'ERR_SPOOFED_SOURCE' });
    await nothingMore(b.client);
    // Its own id is fine, on a backend request and on a routed one.
    expect(await a.client.call('PING', { nonce: 5 }, { src: a.domid })).toEqual({ nonce: 5 });
    const routed = a.client.request('ECHO', { payload: bytes(8) }, { src: a.domid, dst: b.domid });
    const fwd = await b.client.nextRequest('ECHO');
    expect(fwd.src).toBe(a.domid);
    answer(b.client, fwd, { payload: bytes(8) });
    expect(await routed).toMatchObject({ kind: 'res', src: b.domid });
  });

  it('6.1.4: a backend request carrying dst gets ERR_WRONG_DIRECTION; a routed request without dst gets ERR_BAD_ENVELOPE', async () => {
    const [a, b] = await pair();
    expect((await a.client.refused('PING', { nonce: 1 }, { dst: b.domid })).body.code).toBe('ERR_WRONG_DIRECTION');
    expect((await a.client.refused('GNTTAB_QUERY_SIZE', {}, { dst: b.domid })).body.code).toBe('ERR_WRONG_DIRECTION');
    const noDst = await a.client.refused('ECHO', { payload: bytes() });
    expect(noDst.body.code).toBe('ERR_BAD_ENVELOPE');
    expect(noDst.src).toBeUndefined();
    await nothingMore(b.client);
  });

  it('6, 6.1.5, 6.1.7: a destination that is not connected (created only, unknown, dead) gets ERR_NO_SUCH_DOMAIN without src', async () => {
    const a = await guest();
    const idle = await guest({ connect: false });
    const gone = await guest();
    const died = domainDied(hv.control, gone.domid);
    gone.client.terminate();
    await died;
    for (const dst of [idle.domid, gone.domid, 0x7fef]) {
      const r = await a.client.refused('ECHO', { payload: bytes() }, { dst });
      expect(r.body.code, `dst ${dst}`).toBe('ERR_NO_SUCH_DOMAIN');
      expect(r.src, 'the backend\'s own refusal carries no src').toBeUndefined();
    }
    expect((await hv.stats()).routedPending).toBe(0);
  });

  it('6.1.5: a second routed request with an id still in flight gets ERR_DUPLICATE_ID without src; the id is free again once answered', async () => {
    const [a, b] = await pair();
    // Both requests go out raw, so that their replies (both with id 5) are told apart by kind and content.
    a.client.send({ v: a.client.version, kind: 'req', type: 'ECHO', id: 5, dst: b.domid, body: { payload: bytes(1) } });
    const fwd = await b.client.nextRequest('ECHO');
    a.client.send({ v: a.client.version, kind: 'req', type: 'ECHO', id: 5, dst: b.domid, body: { payload: bytes(2) } });
    const refusal = await a.client.next((e) => e.kind === 'err' && e.id === 5, 'ERR_DUPLICATE_ID');
    expect(refusal).toMatchObject({ type: 'ECHO', body: { code: 'ERR_DUPLICATE_ID' } });
    expect(refusal.src).toBeUndefined();
    await nothingMore(b.client);
    answer(b.client, fwd, { payload: bytes(1) });
    const answered = await a.client.next((e) => e.kind === 'res' && e.id === 5, 'the answer to the first request');
    expect(answered).toMatchObject({ src: b.domid, body: { payload: bytes(1) } });
    const again = a.client.request('ECHO', { payload: bytes(3) }, { id: 5, dst: b.domid });
    answer(b.client, await b.client.nextRequest('ECHO'), { payload: bytes(3) });
    expect(await again).toMatchObject({ kind: 'res', id: 5, body: { payload: bytes(3) } });
  });

  it('6, 9.2 step 2: a destination dying with a request pending gives the requester ERR_PEER_GONE without src', async () => {
    const [a, b] = await pair();
    const reply = a.client.request('ECHO', { payload: bytes() }, { id: 9, dst: b.domid });
    await b.client.nextRequest('ECHO');
    expect((await hv.stats()).routedPending).toBe(1);
    b.client.terminate();
    const err = await reply;
    expect(err).toMatchObject({ kind: 'err', type: 'ECHO', id: 9, body: { code: 'ERR_PEER_GONE' } });
    expect(err.src).toBeUndefined();
    await domainDied(hv.control, b.domid);
    expect((await hv.stats()).routedPending).toBe(0);
  });

  it('9.2 step 2: routed requests from a dying domain are forgotten; the reply to one is dropped', async () => {
    const [a, b] = await pair();
    void a.client.request('ECHO', { payload: bytes() }, { dst: b.domid }).catch(() => undefined);
    const fwd = await b.client.nextRequest('ECHO');
    const died = domainDied(hv.control, a.domid);
    a.client.terminate();
    await died;
    expect((await hv.stats()).routedPending).toBe(0);
    answer(b.client, fwd, { payload: bytes() });
    await nothingMore(b.client);
  });

  it('6.1.8: routed events carry the stamped src; without dst: ERR_BAD_ENVELOPE, to no connected domain: ERR_NO_SUCH_DOMAIN, an event of the backend: ERR_WRONG_DIRECTION, each as PROTOCOL_ERROR', async () => {
    const [a, b] = await pair();
    a.client.send({ v: a.client.version, kind: 'evt', type: 'DMABUF_EXPORT_FD_FAILED', id: 0, dst: b.domid, body: failedEvent(b.domid) });
    const got = await b.client.nextEvent('DMABUF_EXPORT_FD_FAILED');
    expect(got).toMatchObject({ kind: 'evt', id: 0, src: a.domid, body: failedEvent(b.domid) });
    const refusals: [string, Record<string, unknown>, string][] = [
      ['no dst', { v: a.client.version, kind: 'evt', type: 'DMABUF_EXPORT_FD_FAILED', id: 0, body: failedEvent(b.domid) }, 'ERR_BAD_ENVELOPE'],
      ['unknown dst', { v: a.client.version, kind: 'evt', type: 'DMABUF_EXPORT_FD_FAILED', id: 0, dst: 0x7fef, body: failedEvent(b.domid) }, 'ERR_NO_SUCH_DOMAIN'],
      ['DOMAIN_DIED from a domain', { v: a.client.version, kind: 'evt', type: 'DOMAIN_DIED', id: 0, body: { domid: b.domid, reason: 'destroyed', mappingsReleased: 0 } }, 'ERR_WRONG_DIRECTION'],
      ['DOMAIN_UP to a domain', { v: a.client.version, kind: 'evt', type: 'DOMAIN_UP', id: 0, dst: b.domid, body: { domid: a.domid } }, 'ERR_WRONG_DIRECTION'],
      ['EVTCHN_EVENT to a domain', { v: a.client.version, kind: 'evt', type: 'EVTCHN_EVENT', id: 0, dst: b.domid, body: { port: 1, count: 1 } }, 'ERR_WRONG_DIRECTION'],
    ];
    for (const [name, frame, code] of refusals) {
      const pe = a.client.nextProtocolError();
      a.client.sendRaw(frame);
      expect((await pe).body.code, name).toBe(code);
    }
    await nothingMore(b.client);
    expect(b.client.unclaimed().filter((e) => e.type === 'DOMAIN_DIED' && (e.body as { domid: number }).domid === b.domid)).toEqual([]);
  });

  it('6.1.8: a PROTOCOL_ERROR without dst is for the backend (no answer); with dst it is routed with src stamped', async () => {
    const [a, b] = await pair();
    a.client.send({ v: a.client.version, kind: 'evt', type: 'PROTOCOL_ERROR', id: 0, body: { code: 'ERR_MALFORMED', message: 'I did not like a frame' } });
    await nothingMore(a.client);
    a.client.send({ v: a.client.version, kind: 'evt', type: 'PROTOCOL_ERROR', id: 0, dst: b.domid, body: { code: 'ERR_FIELD_RANGE', message: 'about your reply', id: 4, type: 'ECHO' } });
    const routed = await b.client.nextEvent<ErrBody>('PROTOCOL_ERROR');
    expect(routed).toMatchObject({ src: a.domid, body: { code: 'ERR_FIELD_RANGE', id: 4, type: 'ECHO' } });
  });
}));
