/**
 * Session rules and hostile input: HELLO negotiation and authentication,
 * caller checks, spoofed sources, malformed and out-of-range frames,
 * oversized frames, version mismatches. After each hostile input another
 * domain is still served.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame, MAX_BATCH, MAX_VERSION, MIN_VERSION, type Envelope } from '../../protocol/index.ts';
import { DOMAIN_CREATE, HV_STATS } from '../../protocol/messages/control.ts';
import { GNTTAB_QUERY_SIZE } from '../../protocol/messages/grant.ts';
import { DOMAIN_UP, PING } from '../../protocol/messages/session.ts';
import { HvClient } from '../../src/transport/hv-client.ts';
import type { Backend } from '../../src/hv/backend.ts';
import { connectControl, errorCode, nextEvent, onCleanup, packRaw, RawPeer, startBackend, startGuest } from './helpers.ts';
import { RawSocketClient } from './raw-socket.ts';

/** Another domain is still served. */
async function stillServes(client: HvClient): Promise<void> {
  await expect(client.call(PING, { nonce: 42 })).resolves.toEqual({ nonce: 42 });
}

function hello(domid: number, token: string, min = 1, max = 1): Envelope {
  return { v: 1, kind: 'req', type: 'HELLO', id: 7, body: { minVersion: min, maxVersion: max, domid, token, caps: ['gnttab.v1', 'x.unknown'] } };
}

async function setup(): Promise<{ hv: Backend; ctl: HvClient }> {
  const hv = await startBackend();
  const ctl = await connectControl(hv);
  return { hv, ctl };
}

describe('HELLO', () => {
  it('chooses the highest shared version and the common capabilities', async () => {
    const { hv } = await setup();
    const d = await hv.createDomain({ name: 'a', memPages: 16 });
    const peer = await RawPeer.open(hv.url);
    peer.send(hello(d.domid, d.token, 1, 9));
    const res = await peer.next();
    expect(res).toMatchObject({ kind: 'res', type: 'HELLO', id: 7, v: MAX_VERSION });
    expect(res.body).toEqual({ version: MAX_VERSION, domid: d.domid, caps: ['gnttab.v1'], maxFrameBytes: 16 * 1024 * 1024, maxBatch: MAX_BATCH });
    expect(hv.stats().domains[0]).toMatchObject({ state: 'running', connected: true });
  });

  it('refuses a range with no shared version, naming its own range, and accepts a retry', async () => {
    const { hv, ctl } = await setup();
    const d = await hv.createDomain({ name: 'a', memPages: 16 });
    const peer = await RawPeer.open(hv.url);
    peer.send(hello(d.domid, d.token, MAX_VERSION + 1, MAX_VERSION + 5));
    const err = await peer.next();
    expect(err).toMatchObject({ kind: 'err', id: 7, body: { code: 'ERR_UNSUPPORTED_VERSION', min: MIN_VERSION, max: MAX_VERSION } });
    peer.send(hello(d.domid, d.token, 3, 2)); // inverted
    expect((await peer.next()).body).toMatchObject({ code: 'ERR_UNSUPPORTED_VERSION' });
    peer.send(hello(d.domid, d.token));
    expect((await peer.next()).kind).toBe('res');
    await stillServes(ctl);
  });

  it('closes with 1008 after ERR_BAD_TOKEN', async () => {
    const { hv, ctl } = await setup();
    const d = await hv.createDomain({ name: 'a', memPages: 16 });
    const peer = await RawPeer.open(hv.url);
    peer.send(hello(d.domid, 'not-the-token'));
    expect((await peer.next()).body).toMatchObject({ code: 'ERR_BAD_TOKEN' });
    expect(await peer.closed).toBe(1008);
    // The domain is untouched: the right token still works.
    const g = await HvClient.connect({ url: hv.url, domid: d.domid, token: d.token });
    await stillServes(g);
    await g.close();
    // A bad control token too.
    expect(await errorCode(HvClient.connect({ url: hv.url, domid: 0, token: 'x' }))).toBe('ERR_BAD_TOKEN');
    await stillServes(ctl);
  });

  it('refuses an unknown domain and a second connection for the same domain', async () => {
    const { hv, ctl } = await setup();
    expect(await errorCode(HvClient.connect({ url: hv.url, domid: 77, token: 'x' }))).toBe('ERR_NO_SUCH_DOMAIN');
    const g = await startGuest(hv);
    expect(await errorCode(HvClient.connect({ url: hv.url, domid: g.domid, token: g.created.token }))).toBe('ERR_ALREADY_CONNECTED');
    expect(await errorCode(HvClient.connect({ url: hv.url, domid: 0, token: hv.controlToken }))).toBe('ERR_ALREADY_CONNECTED');
    await stillServes(g.client);
    await stillServes(ctl);
  });

  it('a control connection whose close frame the backend has read is no longer live: a new one is accepted at once (6.1 rule 1)', async () => {
    const { hv, ctl } = await setup();
    await ctl.close();
    const old = await RawSocketClient.open(hv.url);
    onCleanup(() => old.destroy());
    old.send(0x2, encodeFrame(hello(0, hv.controlToken)));
    expect(decodeFrame((await old.next()).payload)).toMatchObject({ ok: true, env: { kind: 'res', type: 'HELLO' } });
    // The close handshake completes, but this client keeps its TCP connection open: the backend's
    // socket never closes, so only the close frame it read can tell it that the connection is over.
    old.sendClose(1000);
    expect((await old.next()).opcode).toBe(0x8);
    const again = await HvClient.connect({ url: hv.url, domid: 0, token: hv.controlToken });
    onCleanup(() => again.close());
    await stillServes(again);
    expect((await again.call(HV_STATS, {})).domains).toEqual([]);
  });

  it('refuses everything before HELLO, and a second HELLO', async () => {
    const { hv, ctl } = await setup();
    const peer = await RawPeer.open(hv.url);
    peer.send({ v: 1, kind: 'req', type: 'PING', id: 3, body: { nonce: 1 } });
    expect(await peer.next()).toMatchObject({ kind: 'err', id: 3, body: { code: 'ERR_NOT_AUTHENTICATED' } });
    peer.send({ v: 1, kind: 'evt', type: 'DOMAIN_UP', id: 0, body: { domid: 3 } });
    expect(await peer.next()).toMatchObject({ kind: 'evt', type: 'PROTOCOL_ERROR', body: { code: 'ERR_NOT_AUTHENTICATED' } });
    peer.send(hello(0, 'x'.repeat(10)));
    expect((await peer.next()).body).toMatchObject({ code: 'ERR_BAD_TOKEN' });
    const g = await startGuest(hv);
    expect(await errorCode(g.client.conn.requestRaw('HELLO', { minVersion: 1, maxVersion: 1, domid: g.domid, token: g.created.token, caps: [] }))).toBe('ERR_WRONG_DIRECTION');
    await stillServes(ctl);
  });

  it('announces DOMAIN_UP to the others', async () => {
    const { hv, ctl } = await setup();
    const up = nextEvent(ctl, DOMAIN_UP);
    const g = await startGuest(hv, { name: 'vm-a' });
    expect(await up).toEqual({ domid: g.domid, name: 'vm-a' });
  });

  it('closes a connection that never says HELLO', async () => {
    const hv = await startBackend({ helloTimeoutMs: 50 });
    const peer = await RawPeer.open(hv.url);
    expect(await peer.closed).toBe(1008);
  });
});

describe('permissions and sources', () => {
  it('refuses control operations from a guest and guest operations from the control domain', async () => {
    const { hv, ctl } = await setup();
    const g = await startGuest(hv);
    expect(await errorCode(g.client.call(DOMAIN_CREATE, { name: 'evil', memPages: 1 }))).toBe('ERR_NOT_PERMITTED');
    expect(await errorCode(g.client.call(HV_STATS, {}))).toBe('ERR_NOT_PERMITTED');
    expect(await errorCode(ctl.call(GNTTAB_QUERY_SIZE, {}))).toBe('ERR_NOT_PERMITTED');
    await stillServes(ctl);
    await stillServes(g.client);
  });

  it('refuses a frame whose src names another domain', async () => {
    const { hv, ctl } = await setup();
    const a = await startGuest(hv);
    const b = await startGuest(hv);
    expect(await errorCode(a.client.conn.requestRaw('PING', { nonce: 1 }, { src: b.domid }))).toBe('ERR_SPOOFED_SOURCE');
    expect(await errorCode(a.client.conn.requestRaw('ECHO', { payload: new Uint8Array(3) }, { src: b.domid, dst: b.domid }))).toBe('ERR_SPOOFED_SOURCE');
    // Its own id is fine.
    await expect(a.client.conn.requestRaw('PING', { nonce: 5 }, { src: a.domid })).resolves.toEqual({ nonce: 5 });
    await stillServes(b.client);
    await stillServes(ctl);
  });
});

describe('hostile frames', () => {
  it('answers each with its documented error and keeps serving', async () => {
    const { hv, ctl } = await setup();
    const peer = await (async () => {
      const d = await hv.createDomain({ name: 'hostile', memPages: 16 });
      return RawPeer.hello(hv.url, d.domid, d.token);
    })();
    const cases: { name: string; bytes: Uint8Array | string; expect: Partial<Envelope> & { body: Record<string, unknown> } }[] = [
      { name: 'random bytes', bytes: new Uint8Array([0xc1, ...randomBytes(64)]), expect: { kind: 'evt', type: 'PROTOCOL_ERROR', body: { code: 'ERR_MALFORMED' } } },
      { name: 'text frame', bytes: 'hello', expect: { kind: 'evt', type: 'PROTOCOL_ERROR', body: { code: 'ERR_MALFORMED' } } },
      { name: 'not a map', bytes: packRaw([1, 2, 3]), expect: { type: 'PROTOCOL_ERROR', body: { code: 'ERR_MALFORMED' } } },
      { name: 'unknown type', bytes: packRaw({ v: 1, kind: 'req', type: 'NO_SUCH_THING', id: 9, body: {} }), expect: { type: 'PROTOCOL_ERROR', body: { code: 'ERR_UNKNOWN_TYPE', id: 9, type: 'NO_SUCH_THING' } } },
      { name: 'bad envelope', bytes: packRaw({ v: 1, kind: 'req', type: 'PING', id: -1, body: {} }), expect: { type: 'PROTOCOL_ERROR', body: { code: 'ERR_BAD_ENVELOPE' } } },
      { name: 'wrong field type', bytes: packRaw({ v: 1, kind: 'req', type: 'PING', id: 10, body: { nonce: 'x' } }), expect: { kind: 'err', id: 10, body: { code: 'ERR_FIELD_TYPE', field: 'body.nonce' } } },
      { name: 'float for an integer', bytes: packRaw({ v: 1, kind: 'req', type: 'GNTTAB_MAP_GRANT_REF', id: 11, body: { dom: 1, flags: 2, refs: [1, 2.5] } }), expect: { kind: 'err', id: 11, body: { code: 'ERR_FIELD_TYPE', field: 'body.refs[1]' } } },
      { name: 'out of range', bytes: packRaw({ v: 1, kind: 'req', type: 'EVTCHN_SEND', id: 12, body: { port: 5000 } }), expect: { kind: 'err', id: 12, body: { code: 'ERR_FIELD_RANGE', field: 'body.port' } } },
      { name: 'negative domid', bytes: packRaw({ v: 1, kind: 'req', type: 'GNTTAB_MAP_GRANT_REF', id: 13, body: { dom: -1, flags: 2, refs: [] } }), expect: { kind: 'err', id: 13, body: { code: 'ERR_FIELD_RANGE' } } },
      { name: 'missing field', bytes: packRaw({ v: 1, kind: 'req', type: 'PING', id: 14, body: {} }), expect: { kind: 'err', id: 14, body: { code: 'ERR_FIELD_MISSING' } } },
      { name: 'undeclared field', bytes: packRaw({ v: 1, kind: 'req', type: 'PING', id: 15, body: { nonce: 1, extra: 2 } }), expect: { kind: 'err', id: 15, body: { code: 'ERR_UNKNOWN_FIELD' } } },
      { name: 'version mismatch', bytes: packRaw({ v: 2, kind: 'req', type: 'PING', id: 16, body: { nonce: 1 } }), expect: { kind: 'err', id: 16, body: { code: 'ERR_VERSION_MISMATCH' } } },
      { name: 'backend-only event', bytes: packRaw({ v: 1, kind: 'evt', type: 'DOMAIN_DIED', id: 0, body: { domid: 1, reason: 'destroyed', mappingsReleased: 0 } }), expect: { type: 'PROTOCOL_ERROR', body: { code: 'ERR_WRONG_DIRECTION' } } },
      { name: 'event as a request', bytes: packRaw({ v: 1, kind: 'req', type: 'EVTCHN_EVENT', id: 17, body: { port: 1, count: 1 } }), expect: { type: 'PROTOCOL_ERROR', body: { code: 'ERR_WRONG_DIRECTION' } } },
      { name: 'stray reply', bytes: packRaw({ v: 1, kind: 'res', type: 'PING', id: 99, body: { nonce: 1 } }), expect: { kind: 'res', type: 'PING', id: 18, body: { nonce: 18 } } },
      { name: 'routed request to nobody', bytes: packRaw({ v: 1, kind: 'req', type: 'ECHO', id: 19, dst: 999, body: { payload: new Uint8Array(1) } }), expect: { kind: 'err', id: 19, body: { code: 'ERR_NO_SUCH_DOMAIN' } } },
      { name: 'routed request without dst', bytes: packRaw({ v: 1, kind: 'req', type: 'ECHO', id: 20, body: { payload: new Uint8Array(1) } }), expect: { kind: 'err', id: 20, body: { code: 'ERR_BAD_ENVELOPE' } } },
      { name: 'backend request with dst', bytes: packRaw({ v: 1, kind: 'req', type: 'PING', id: 21, dst: 1, body: { nonce: 1 } }), expect: { kind: 'err', id: 21, body: { code: 'ERR_WRONG_DIRECTION' } } },
      // A request of a declared type with a readable id gets its err reply whatever failed (SPEC 4), a bad envelope included.
      { name: 'request with a bad envelope field', bytes: packRaw({ v: 1, kind: 'req', type: 'PING', id: 22, dst: 0x7ff0, body: { nonce: 1 } }), expect: { kind: 'err', type: 'PING', id: 22, body: { code: 'ERR_BAD_ENVELOPE' } } },
      { name: 'request without a body', bytes: packRaw({ v: 1, kind: 'req', type: 'PING', id: 23 }), expect: { kind: 'err', type: 'PING', id: 23, body: { code: 'ERR_BAD_ENVELOPE' } } },
    ];
    for (const c of cases) {
      peer.sendBytes(c.bytes);
      // A stray reply is dropped silently: probe with a PING whose answer must come next.
      if (c.name === 'stray reply') peer.send({ v: 1, kind: 'req', type: 'PING', id: 18, body: { nonce: 18 } });
      const got = await peer.next();
      expect(got, c.name).toMatchObject(c.expect);
      await stillServes(ctl);
    }
    // The hostile connection itself is still usable.
    peer.send({ v: 1, kind: 'req', type: 'PING', id: 30, body: { nonce: 30 } });
    expect(await peer.next()).toMatchObject({ kind: 'res', id: 30 });
  });

  it('closes a connection that sends an oversized frame with 1009, and only that one', async () => {
    const hv = await startBackend({ maxFrameBytes: 64 * 1024 });
    const ctl = await connectControl(hv);
    const d = await hv.createDomain({ name: 'big', memPages: 16 });
    const peer = await RawPeer.hello(hv.url, d.domid, d.token);
    const died = nextEvent(ctl, (await import('../../protocol/messages/session.ts')).DOMAIN_DIED);
    peer.sendBytes(packRaw({ v: 1, kind: 'req', type: 'PING', id: 2, body: { nonce: 1, pad: new Uint8Array(65 * 1024) } }));
    expect(await peer.closed).toBe(1009);
    expect(await died).toMatchObject({ domid: d.domid, reason: 'disconnected' });
    await stillServes(ctl);
  });
});
