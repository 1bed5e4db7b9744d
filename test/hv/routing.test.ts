/** Routing between domains: stamped sources, id translation, peer death, duplicates, backpressure, events. */
import { describe, expect, it } from 'vitest';
import { DMABUF_EXPORT_FD_FAILED } from '../../protocol/messages/dmabuf.ts';
import { ECHO, PING } from '../../protocol/messages/session.ts';
import { connectControl, errorCode, RawPeer, startBackend, startGuest } from './helpers.ts';

describe('routing', () => {
  it('forwards a request with the true source and brings the reply back', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv);
    const b = await startGuest(hv);
    const seen: number[] = [];
    b.client.handlePeerRequest(ECHO, (body, src) => {
      seen.push(src);
      return { payload: body.payload };
    });
    const res = await a.client.peerRequest(ECHO, b.domid, { payload: new Uint8Array([1, 2, 3]) });
    expect(Array.from(res.payload)).toEqual([1, 2, 3]);
    expect(seen).toEqual([a.domid]);
    expect(hv.stats().routedPending).toBe(0);
  });

  it('keeps requests with the same id from different requesters apart', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv);
    const c = await startGuest(hv);
    const b = await startGuest(hv);
    const ids = new Set<number>();
    b.client.handlePeerRequest(ECHO, (body, _src, env) => {
      ids.add(env.id);
      return { payload: body.payload };
    });
    // Both clients number their requests alike, so these carry the same ids.
    const [ra, rc] = await Promise.all([
      a.client.peerRequest(ECHO, b.domid, { payload: new Uint8Array([0xa]) }),
      c.client.peerRequest(ECHO, b.domid, { payload: new Uint8Array([0xc]) }),
    ]);
    expect(Array.from(ra.payload)).toEqual([0xa]);
    expect(Array.from(rc.payload)).toEqual([0xc]);
    expect(ids.size).toBe(2);
  });

  it('forwards an error reply of the peer', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv);
    const b = await startGuest(hv);
    expect(await errorCode(a.client.peerRequest(ECHO, b.domid, { payload: new Uint8Array() }))).toBe('ERR_UNSUPPORTED_LAYER');
  });

  it('answers ERR_NO_SUCH_DOMAIN for a destination that is not connected', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv);
    const idle = await startGuest(hv, { connect: false });
    expect(await errorCode(a.client.peerRequest(ECHO, idle.domid, { payload: new Uint8Array() }))).toBe('ERR_NO_SUCH_DOMAIN');
    expect(await errorCode(a.client.peerRequest(ECHO, 4000, { payload: new Uint8Array() }))).toBe('ERR_NO_SUCH_DOMAIN');
  });

  it('answers ERR_PEER_GONE when the destination dies, and drops replies to a dead requester', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv);
    const b = await startGuest(hv);
    let arrived!: () => void;
    const atB = new Promise<void>((resolve) => { arrived = resolve; });
    b.client.handlePeerRequest(ECHO, () => { arrived(); return new Promise(() => undefined); });
    const pending = a.client.peerRequest(ECHO, b.domid, { payload: new Uint8Array() });
    await atB;
    expect(hv.stats().routedPending).toBe(1);
    await b.client.conn.destroy();
    expect(await errorCode(pending)).toBe('ERR_PEER_GONE');
    expect(hv.stats().routedPending).toBe(0);
  });

  it('refuses a duplicate routed id in flight', async () => {
    const hv = await startBackend();
    const b = await startGuest(hv);
    let arrived!: () => void;
    const atB = new Promise<void>((resolve) => { arrived = resolve; });
    b.client.handlePeerRequest(ECHO, () => { arrived(); return new Promise(() => undefined); });
    const d = await hv.createDomain({ name: 'raw', memPages: 1 });
    const raw = await RawPeer.hello(hv.url, d.domid, d.token);
    raw.send({ v: 1, kind: 'req', type: 'ECHO', id: 5, dst: b.domid, body: { payload: new Uint8Array() } });
    await atB;
    raw.send({ v: 1, kind: 'req', type: 'ECHO', id: 5, dst: b.domid, body: { payload: new Uint8Array() } });
    expect(await raw.next()).toMatchObject({ kind: 'err', id: 5, body: { code: 'ERR_DUPLICATE_ID' } });
  });

  it('refuses with ERR_BACKPRESSURE while the destination does not drain', async () => {
    const hv = await startBackend({ backpressureBytes: 64 * 1024 });
    const a = await startGuest(hv);
    const d = await hv.createDomain({ name: 'slow', memPages: 1 });
    const slow = await RawPeer.hello(hv.url, d.domid, d.token);
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const big = new Uint8Array(1024 * 1024);
    // Requests pile up at the destination (which never answers); one of them must be refused.
    const refused = new Promise<string>((resolve) => {
      for (let i = 0; i < 12; i++) {
        a.client.peerRequest(ECHO, d.domid, { payload: big }, 60_000).catch((e: { code?: string }) => {
          if (e.code === 'ERR_BACKPRESSURE') resolve(e.code);
        });
      }
    });
    expect(await refused).toBe('ERR_BACKPRESSURE');
    // Everyone else is still served.
    await expect(a.client.call(PING, { nonce: 1 })).resolves.toEqual({ nonce: 1 });
  }, 20_000);

  it('forwards routed events with the true source, and reports undeliverable ones', async () => {
    const hv = await startBackend();
    const ctl = await connectControl(hv);
    const a = await startGuest(hv);
    const b = await startGuest(hv);
    const got = new Promise<number | undefined>((resolve) => b.client.onEventOf(DMABUF_EXPORT_FD_FAILED, (_body, src) => resolve(src)));
    const hid = { dom: b.domid, cnt: 1, key: new Uint8Array(16) };
    a.client.peerNotify(DMABUF_EXPORT_FD_FAILED, b.domid, { hid, fdId: 3 });
    expect(await got).toBe(a.domid);
    const d = await hv.createDomain({ name: 'raw', memPages: 1 });
    const raw = await RawPeer.hello(hv.url, d.domid, d.token);
    raw.send({ v: 1, kind: 'evt', type: 'DMABUF_EXPORT_FD_FAILED', id: 0, dst: 999, body: { hid, fdId: 3 } });
    expect(await raw.next()).toMatchObject({ type: 'PROTOCOL_ERROR', body: { code: 'ERR_NO_SUCH_DOMAIN' } });
    await expect(ctl.call(PING, { nonce: 2 })).resolves.toEqual({ nonce: 2 });
  });
});
