/**
 * Conformance, SPEC.md section 5 (session) and 6.1 rules 1-3: HELLO first,
 * version negotiation, authentication, one connection per domain, the
 * negotiated version on every later frame, caller rules. Negotiation is
 * checked once; every other rule is checked over protocol v1 and v2 (the
 * backend speaks both, SPEC 15): the domains say HELLO offering 1..v.
 */
import { describe, expect, it } from 'vitest';
import { MAX_BATCH, MAX_FRAME_BYTES } from '../../protocol/index.ts';
import { domainDied, useBackend, type Guest, type GuestOptions } from './support/harness.ts';
import type { ErrBody, WireClient } from './support/wire.ts';

const hv = useBackend();

/** The backend still answers on this connection. */
async function stillServes(c: WireClient, nonce = 77): Promise<void> {
  expect(await c.call('PING', { nonce })).toEqual({ nonce });
}

/** The backend's supported range, read from a refusal (SPEC 5.2: `min`/`max` on ERR_UNSUPPORTED_VERSION). */
async function supportedRange(): Promise<{ min: number; max: number }> {
  const probe = await hv.open('probe');
  const reply = await probe.hello(0, 'unused', { minVersion: 0xffff, maxVersion: 0xffff });
  expect(reply.kind, 'offering only version 65535 (assumed unsupported)').toBe('err');
  const body = reply.body as unknown as ErrBody;
  expect(body.code).toBe('ERR_UNSUPPORTED_VERSION');
  expect(typeof body.min === 'number' && typeof body.max === 'number', 'min and max on ERR_UNSUPPORTED_VERSION').toBe(true);
  probe.terminate();
  return { min: body.min!, max: body.max! };
}

describe('SPEC 5 session', () => {
  it('5.2, 5.4: HELLO answers the highest version in both ranges, the common capabilities, the frame and batch limits', async () => {
    const { min, max } = await supportedRange();
    expect(min).toBeGreaterThanOrEqual(1);
    expect(max).toBeGreaterThanOrEqual(min);
    const g = await hv.guest({ connect: false });
    const c = await hv.open('hello');
    const reply = await c.hello(g.domid, g.token, { minVersion: 1, maxVersion: 0xffff, caps: ['x.not-a-capability', 'gnttab.v1'], id: 9 });
    expect(reply).toMatchObject({ kind: 'res', type: 'HELLO', id: 9 });
    expect(reply.src).toBeUndefined();
    expect(reply.body).toEqual({ version: max, domid: g.domid, caps: ['gnttab.v1'], maxFrameBytes: MAX_FRAME_BYTES, maxBatch: MAX_BATCH });
    await stillServes(c);
    // Offering only the lowest supported version chooses it; capabilities none in common: [].
    const h = await hv.guest({ connect: false });
    const c2 = await hv.open('hello-min');
    const low = await c2.hello(h.domid, h.token, { minVersion: min, maxVersion: min, caps: [] });
    expect(low.body).toMatchObject({ version: min, domid: h.domid, caps: [] });
  });

  it('5.2, 6.1.1: no shared version or an inverted range: ERR_UNSUPPORTED_VERSION with min/max; the connection stays open and HELLO may be retried', async () => {
    const { min, max } = await supportedRange();
    const g = await hv.guest({ connect: false });
    const c = await hv.open('versions');
    if (max < 0xfffe) {
      const above = await c.hello(g.domid, g.token, { minVersion: max + 1, maxVersion: max + 5, id: 5 });
      expect(above).toMatchObject({ kind: 'err', type: 'HELLO', id: 5, body: { code: 'ERR_UNSUPPORTED_VERSION', min, max } });
      // Inverted: [max+1, max] would give `max` to an implementation that ignored the offer's minimum.
      const inverted = await c.hello(g.domid, g.token, { minVersion: max + 1, maxVersion: max, id: 6 });
      expect(inverted).toMatchObject({ kind: 'err', id: 6, body: { code: 'ERR_UNSUPPORTED_VERSION', min, max } });
    }
    if (min > 1) {
      const below = await c.hello(g.domid, g.token, { minVersion: 1, maxVersion: min - 1, id: 7 });
      expect(below).toMatchObject({ kind: 'err', id: 7, body: { code: 'ERR_UNSUPPORTED_VERSION', min, max } });
    }
    expect(await hv.statsOf(g.domid)).toMatchObject({ state: 'created', connected: false });
    expect((await c.hello(g.domid, g.token, { minVersion: min, maxVersion: max, id: 8 })).kind).toBe('res');
    await stillServes(c);
  });

  describe.each([1, 2])('over protocol v%i', (version) => {
    const guest = async (o: GuestOptions = {}): Promise<Guest> => {
      const g = await hv.guest({ ...o, maxVersion: version });
      if (o.connect !== false) expect(g.client.version, 'the version HELLO chose').toBe(version);
      return g;
    };
    /** HELLO on a raw connection offering 1..version. */
    const hello = (c: WireClient, domid: number, token: string, o: { id?: number; v?: number } = {}) => c.hello(domid, token, { ...o, maxVersion: version });

    it('5.1: a request before HELLO gets ERR_NOT_AUTHENTICATED with its type and id, and HELLO still works after', async () => {
      const g = await guest({ connect: false });
      const c = await hv.open('early');
      const ping = await c.request('PING', { nonce: 1 }, { id: 41 });
      expect(ping).toMatchObject({ kind: 'err', type: 'PING', id: 41, body: { code: 'ERR_NOT_AUTHENTICATED' } });
      const routed = await c.request('ECHO', { payload: new Uint8Array(2) }, { id: 42, dst: g.domid });
      expect(routed).toMatchObject({ kind: 'err', type: 'ECHO', id: 42, body: { code: 'ERR_NOT_AUTHENTICATED' } });
      const control = await c.request('HV_STATS', {}, { id: 43 });
      expect(control).toMatchObject({ kind: 'err', type: 'HV_STATS', id: 43, body: { code: 'ERR_NOT_AUTHENTICATED' } });
      expect((await hello(c, g.domid, g.token)).body).toMatchObject({ version });
      await stillServes(c);
    });

    it('5.3: a wrong token gets ERR_BAD_TOKEN and close 1008; the domain is untouched and its token still works', async () => {
      const g = await guest({ connect: false });
      const c = await hv.open('bad-token');
      const reply = await hello(c, g.domid, `${g.token}x`, { id: 3 });
      expect(reply).toMatchObject({ kind: 'err', type: 'HELLO', id: 3, body: { code: 'ERR_BAD_TOKEN' } });
      expect(await c.closeCode()).toBe(1008);
      expect(await hv.statsOf(g.domid)).toMatchObject({ state: 'created', connected: false });
      await g.connect();
      await stillServes(g.client);
      // The control domain's token is checked the same way; the live control connection is unaffected.
      const c0 = await hv.open('bad-control-token');
      expect((await hello(c0, 0, 'not-the-control-token')).body).toMatchObject({ code: 'ERR_BAD_TOKEN' });
      expect(await c0.closeCode()).toBe(1008);
      await stillServes(hv.control);
    });

    it('6.1.1: HELLO checks run in order: version, domain, token, already connected', async () => {
      const { max } = await supportedRange();
      const g = await guest();
      const unknown = 0x7fef; // the highest guest id: not one of this file's domains
      const c = await hv.open('order');
      if (max < 0xffff) {
        // Unsupported version before an unknown domain and a bad token.
        expect((await c.hello(unknown, 'x', { minVersion: max + 1, maxVersion: max + 1 })).body).toMatchObject({ code: 'ERR_UNSUPPORTED_VERSION' });
      }
      // An unknown domain before its (necessarily bad) token: no close.
      expect((await hello(c, unknown, 'x')).body).toMatchObject({ code: 'ERR_NO_SUCH_DOMAIN' });
      // The connection is still open and still unauthenticated.
      expect((await c.request('PING', { nonce: 1 })).body).toMatchObject({ code: 'ERR_NOT_AUTHENTICATED' });
      // A live domain with the right token: ERR_ALREADY_CONNECTED, and the connection stays open, unauthenticated.
      expect((await hello(c, g.domid, g.token)).body).toMatchObject({ code: 'ERR_ALREADY_CONNECTED' });
      expect((await c.request('PING', { nonce: 2 })).body).toMatchObject({ code: 'ERR_NOT_AUTHENTICATED' });
      // The same for the control domain.
      expect((await hello(c, 0, hv.controlToken)).body).toMatchObject({ code: 'ERR_ALREADY_CONNECTED' });
      // A live domain with a bad token: the token is checked first (ERR_BAD_TOKEN, close 1008).
      expect((await hello(c, g.domid, 'x')).body).toMatchObject({ code: 'ERR_BAD_TOKEN' });
      expect(await c.closeCode()).toBe(1008);
      await stillServes(g.client);
      expect(await hv.statsOf(g.domid)).toMatchObject({ state: 'running', connected: true });
    });

    it('6.1.1, 9.1 rule 5: a domain whose connection closed cannot say HELLO again (ERR_NO_SUCH_DOMAIN)', async () => {
      const g = await guest();
      const died = domainDied(hv.control, g.domid);
      g.client.terminate();
      expect(await died).toMatchObject({ domid: g.domid, reason: 'disconnected' });
      const c = await hv.open('revenant');
      expect((await hello(c, g.domid, g.token)).body).toMatchObject({ code: 'ERR_NO_SUCH_DOMAIN' });
    });

    it('5.5, 6.1.3: after HELLO a frame whose v differs from the negotiated version gets ERR_VERSION_MISMATCH (err for a request, PROTOCOL_ERROR otherwise)', async () => {
      const g = await guest();
      const peer = await guest();
      // Another version, supported or not, is a mismatch all the same (for v2: 1 below it, 3 above).
      for (const [i, v] of [version - 1, version + 1].filter((x) => x >= 1).entries()) {
        expect(await g.client.request('PING', { nonce: 1 }, { v, id: 90 + i }))
          .toMatchObject({ kind: 'err', type: 'PING', id: 90 + i, body: { code: 'ERR_VERSION_MISMATCH' } });
      }
      const other = version + 1;
      // A routed request is checked before it is routed.
      expect(await g.client.request('ECHO', { payload: new Uint8Array(1) }, { v: other, id: 101, dst: peer.domid }))
        .toMatchObject({ kind: 'err', type: 'ECHO', id: 101, body: { code: 'ERR_VERSION_MISMATCH' } });
      // An event (here a routed one) and a reply get PROTOCOL_ERROR.
      g.client.send({ v: other, kind: 'evt', type: 'DMABUF_EXPORT_FD_FAILED', id: 0, dst: peer.domid, body: { hid: { dom: peer.domid, cnt: 1, key: new Uint8Array(16) }, fdId: 1 } });
      expect((await g.client.nextProtocolError()).body).toMatchObject({ code: 'ERR_VERSION_MISMATCH' });
      g.client.send({ v: other, kind: 'res', type: 'PING', id: 5, body: { nonce: 5 } });
      expect((await g.client.nextProtocolError()).body).toMatchObject({ code: 'ERR_VERSION_MISMATCH' });
      await stillServes(g.client);
      expect(peer.client.unclaimed().filter((e) => e.type === 'DMABUF_EXPORT_FD_FAILED')).toEqual([]);
    });

    it('5.5: a second HELLO on an authenticated connection gets ERR_WRONG_DIRECTION and changes nothing', async () => {
      // Sent in the negotiated version, so that only the direction rule can refuse it.
      const g = await guest();
      const other = await guest({ connect: false });
      expect(await hello(g.client, other.domid, other.token, { id: 12, v: version }))
        .toMatchObject({ kind: 'err', type: 'HELLO', id: 12, body: { code: 'ERR_WRONG_DIRECTION' } });
      expect(await hv.statsOf(other.domid)).toMatchObject({ state: 'created', connected: false });
      expect(await g.client.call('GNTTAB_QUERY_SIZE', {})).toMatchObject({ nrFrames: 4 });
      await other.connect();
    });

    it('5.6: a domain completing HELLO is announced with DOMAIN_UP to every other connected domain', async () => {
      const watcher = await guest();
      const g = await guest({ name: 'announced', connect: false });
      const toControl = hv.control.nextEvent<{ domid: number }>('DOMAIN_UP', (b) => b.domid === g.domid);
      const toWatcher = watcher.client.nextEvent<{ domid: number }>('DOMAIN_UP', (b) => b.domid === g.domid);
      await g.connect();
      for (const e of [await toControl, await toWatcher]) {
        expect(e.src, 'an event of the backend carries no src (SPEC 6)').toBeUndefined();
        expect(e.body).toMatchObject({ domid: g.domid });
        if ('name' in e.body) expect(e.body.name).toBe('announced');
      }
    });

    it('6.1.2: control requests from a guest and guest requests (routed ones too) from the control domain get ERR_NOT_PERMITTED', async () => {
      const g = await guest();
      for (const [type, body] of [['DOMAIN_CREATE', { name: 'evil', memPages: 1 }], ['DOMAIN_DESTROY', { domid: g.domid }], ['HV_STATS', {}]] as const) {
        expect((await g.client.refused(type, body)).body.code, type).toBe('ERR_NOT_PERMITTED');
      }
      for (const [type, body] of [['GNTTAB_QUERY_SIZE', {}], ['GNTTAB_MAP_GRANT_REF', { dom: g.domid, flags: 2, refs: [1] }], ['EVTCHN_ALLOC_UNBOUND', { remoteDom: g.domid }]] as const) {
        expect((await hv.control.refused(type, body)).body.code, type).toBe('ERR_NOT_PERMITTED');
      }
      const routed = await hv.control.refused('ECHO', { payload: new Uint8Array(1) }, { dst: g.domid });
      expect(routed.body.code).toBe('ERR_NOT_PERMITTED');
      expect(routed.src, 'the backend\'s own error carries no src (6.1 rule 7)').toBeUndefined();
      // PING is for any caller; the guest is still running.
      await stillServes(g.client);
      await stillServes(hv.control);
      expect(await hv.statsOf(g.domid)).toMatchObject({ state: 'running' });
    });
  });
});
