/** Event channels end to end: alloc unbound, bind, send, close, status, and errors. */
import { describe, expect, it } from 'vitest';
import {
  EVTCHN_ALLOC_UNBOUND, EVTCHN_BIND_INTERDOMAIN, EVTCHN_CLOSE, EVTCHN_EVENT, EVTCHN_SEND, EVTCHN_STATUS,
} from '../../protocol/messages/evtchn.ts';
import { errorCode, nextEvent, startBackend, startGuest } from './helpers.ts';

describe('event channels', () => {
  it('binds two domains and delivers sends both ways; close returns the peer to unbound', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv);
    const b = await startGuest(hv);
    const { port: pa } = await a.client.call(EVTCHN_ALLOC_UNBOUND, { remoteDom: b.domid });
    expect(await a.client.call(EVTCHN_STATUS, { port: pa })).toEqual({ state: 'unbound', remoteDom: b.domid });
    const { localPort: pb } = await b.client.call(EVTCHN_BIND_INTERDOMAIN, { remoteDom: a.domid, remotePort: pa });
    expect(await a.client.call(EVTCHN_STATUS, { port: pa })).toEqual({ state: 'interdomain', remoteDom: b.domid, remotePort: pb });
    expect(await b.client.call(EVTCHN_STATUS, { port: pb })).toEqual({ state: 'interdomain', remoteDom: a.domid, remotePort: pa });

    const atB = nextEvent(b.client, EVTCHN_EVENT);
    await a.client.call(EVTCHN_SEND, { port: pa });
    expect(await atB).toEqual({ port: pb, count: 1 });
    const atA = nextEvent(a.client, EVTCHN_EVENT);
    await b.client.call(EVTCHN_SEND, { port: pb });
    expect(await atA).toEqual({ port: pa, count: 1 });

    await b.client.call(EVTCHN_CLOSE, { port: pb });
    expect(await b.client.call(EVTCHN_STATUS, { port: pb })).toEqual({ state: 'closed' });
    expect(await a.client.call(EVTCHN_STATUS, { port: pa })).toEqual({ state: 'unbound', remoteDom: b.domid });
    expect(await errorCode(a.client.call(EVTCHN_SEND, { port: pa }))).toBe('ERR_BAD_ARGUMENT');
    // b may bind again.
    const again = await b.client.call(EVTCHN_BIND_INTERDOMAIN, { remoteDom: a.domid, remotePort: pa });
    expect(again.localPort).toBe(pb);
    expect(hv.stats().domains.map((d) => d.ports)).toEqual([1, 1]);
  });

  it('refuses what Xen refuses', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv);
    const b = await startGuest(hv);
    const c = await startGuest(hv);
    expect(await errorCode(a.client.call(EVTCHN_ALLOC_UNBOUND, { remoteDom: 999 }))).toBe('ERR_NO_SUCH_DOMAIN');
    const { port } = await a.client.call(EVTCHN_ALLOC_UNBOUND, { remoteDom: b.domid });
    // Only the named domain may bind.
    expect(await errorCode(c.client.call(EVTCHN_BIND_INTERDOMAIN, { remoteDom: a.domid, remotePort: port }))).toBe('ERR_BAD_ARGUMENT');
    expect(await errorCode(b.client.call(EVTCHN_BIND_INTERDOMAIN, { remoteDom: a.domid, remotePort: port + 1 }))).toBe('ERR_BAD_ARGUMENT');
    expect(await errorCode(b.client.call(EVTCHN_BIND_INTERDOMAIN, { remoteDom: 999, remotePort: port }))).toBe('ERR_NO_SUCH_DOMAIN');
    await b.client.call(EVTCHN_BIND_INTERDOMAIN, { remoteDom: a.domid, remotePort: port });
    // Already bound.
    expect(await errorCode(b.client.call(EVTCHN_BIND_INTERDOMAIN, { remoteDom: a.domid, remotePort: port }))).toBe('ERR_BAD_ARGUMENT');
    // Unbound and closed ports cannot send; closed ports cannot be closed.
    const { port: lone } = await a.client.call(EVTCHN_ALLOC_UNBOUND, { remoteDom: c.domid });
    expect(await errorCode(a.client.call(EVTCHN_SEND, { port: lone }))).toBe('ERR_BAD_ARGUMENT');
    expect(await errorCode(a.client.call(EVTCHN_SEND, { port: 4000 }))).toBe('ERR_BAD_ARGUMENT');
    expect(await errorCode(a.client.call(EVTCHN_CLOSE, { port: 4000 }))).toBe('ERR_BAD_ARGUMENT');
    // Ports are per domain: c's port numbers are its own.
    expect(await c.client.call(EVTCHN_STATUS, { port })).toEqual({ state: 'closed' });
  });
});
