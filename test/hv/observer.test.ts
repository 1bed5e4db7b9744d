/**
 * Observer connections (SPEC.md 9.6): domain 0's read-only role. Observers
 * connect beside the control connection (several at once), may read
 * HV_STATS and nothing else, receive no event and announce nothing, and a
 * wrong observer token is refused like any other.
 */
import { describe, expect, it } from 'vitest';
import { DOMAIN_CREATE, DOMAIN_DESTROY, HV_STATS } from '../../protocol/messages/control.ts';
import { DOMAIN_UP } from '../../protocol/messages/session.ts';
import { connect, connectControl, errorCode, nextEvent, startBackend, startGuest } from './helpers.ts';

describe('observer connections (SPEC 9.6)', () => {
  it('read HV_STATS beside the control connection, may do nothing else, and see the domains change', async () => {
    const hv = await startBackend();
    const control = await connectControl(hv);
    const a = await connect(hv, 0, hv.observerToken);
    const b = await connect(hv, 0, hv.observerToken);
    expect((await a.call(HV_STATS, {})).domains).toEqual([]);

    // Writes are refused with ERR_NOT_PERMITTED and change nothing; the observer stays connected.
    expect(await errorCode(a.call(DOMAIN_CREATE, { name: 'x', memPages: 16 }))).toBe('ERR_NOT_PERMITTED');
    expect(await errorCode(b.call(DOMAIN_DESTROY, { domid: 1 }))).toBe('ERR_NOT_PERMITTED');
    expect((await a.call(HV_STATS, {})).domains).toEqual([]);

    // A guest connecting: the control connection hears DOMAIN_UP, an observer does not.
    const observed: string[] = [];
    a.conn.on('event', (env: { type: string }) => observed.push(env.type));
    b.conn.on('event', (env: { type: string }) => observed.push(env.type));
    const up = nextEvent(control, DOMAIN_UP);
    const guest = await startGuest(hv, { name: 'watched' });
    await up;
    const stats = await b.call(HV_STATS, {});
    expect(stats.domains.map((d) => [d.domid, d.name, d.connected])).toEqual([[guest.domid, 'watched', true]]);
    expect(observed).toEqual([]);

    // Closing an observer affects nobody; the control connection still works.
    await a.close();
    expect((await control.call(HV_STATS, {})).domains).toHaveLength(1);
  });

  it('connect without a control connection, and a wrong token is refused', async () => {
    const hv = await startBackend();
    const o = await connect(hv, 0, hv.observerToken);
    expect((await o.call(HV_STATS, {})).routedPending).toBe(0);
    // The control domain can still connect while observers are connected.
    const control = await connectControl(hv);
    expect((await control.call(HV_STATS, {})).domains).toEqual([]);
    expect(await errorCode(connect(hv, 0, `${hv.observerToken.slice(0, -1)}x`))).toBe('ERR_BAD_TOKEN');
  });
});
