/**
 * Conformance, SPEC.md section 8: the event-channel state machine
 * (closed -> unbound(R) -> interdomain(R, q) and back), EVTCHN_EVENT
 * delivery to the bound peer, every refusal with its code, and ports when a
 * domain dies (rule 6).
 */
import { describe, expect, it } from 'vitest';
import { domainDied, useBackend, type Guest } from './support/harness.ts';

const hv = useBackend();

async function alloc(g: Guest, remoteDom: number): Promise<number> {
  return (await g.client.call<{ port: number }>('EVTCHN_ALLOC_UNBOUND', { remoteDom })).port;
}
async function bind(g: Guest, remoteDom: number, remotePort: number): Promise<number> {
  return (await g.client.call<{ localPort: number }>('EVTCHN_BIND_INTERDOMAIN', { remoteDom, remotePort })).localPort;
}
function status(g: Guest, port: number): Promise<Record<string, unknown>> {
  return g.client.call('EVTCHN_STATUS', { port });
}
async function refusedCode(g: Guest, type: string, body: Record<string, unknown>): Promise<string> {
  const r = await g.client.refused(type, body);
  expect(r.src).toBeUndefined();
  return r.body.code;
}
/** Collects EVTCHN_EVENTs for `port` on `g` until their counts add up to `sends`. */
async function eventsFor(g: Guest, port: number, sends: number): Promise<number[]> {
  const counts: number[] = [];
  let total = 0;
  while (total < sends) {
    const e = await g.client.nextEvent<{ port: number; count: number }>('EVTCHN_EVENT', (b) => b.port === port);
    expect(e.src, 'an event of the backend carries no src').toBeUndefined();
    counts.push(e.body.count);
    total += e.body.count;
  }
  expect(total).toBe(sends);
  return counts;
}

describe('SPEC 8 event channels', () => {
  it('8 rules 1-2, 5: alloc_unbound takes the lowest closed port as unbound(R); bind takes the binder\'s lowest closed port; both become interdomain; EVTCHN_STATUS shows each state', async () => {
    const a = await hv.guest();
    const b = await hv.guest();
    expect(await status(a, 1)).toEqual({ state: 'closed' });
    const p = await alloc(a, b.domid);
    expect(p).toBe(1);
    expect(await status(a, p)).toEqual({ state: 'unbound', remoteDom: b.domid });
    const q = await bind(b, a.domid, p);
    expect(q).toBe(1);
    expect(await status(a, p)).toEqual({ state: 'interdomain', remoteDom: b.domid, remotePort: q });
    expect(await status(b, q)).toEqual({ state: 'interdomain', remoteDom: a.domid, remotePort: p });
    // Lowest closed port: 2, then 3; closing 2 makes it the lowest again.
    expect(await alloc(a, b.domid)).toBe(2);
    expect(await alloc(a, a.domid)).toBe(3);
    expect(await a.client.call('EVTCHN_CLOSE', { port: 2 })).toEqual({});
    expect(await alloc(a, b.domid)).toBe(2);
    expect(await hv.statsOf(a.domid)).toMatchObject({ ports: 3 });
    expect(await hv.statsOf(b.domid)).toMatchObject({ ports: 1 });
    expect(await status(a, 4095)).toEqual({ state: 'closed' });
  });

  it('8 rule 1: remoteDom must be a guest that is created or running (ERR_NO_SUCH_DOMAIN for unknown, the control domain, dead); itself and a domain that never connected are fine', async () => {
    const a = await hv.guest();
    const idle = await hv.guest({ connect: false });
    const gone = await hv.guest();
    const died = domainDied(hv.control, gone.domid);
    gone.client.terminate();
    await died;
    for (const remoteDom of [0x7fef, 0, gone.domid]) expect(await refusedCode(a, 'EVTCHN_ALLOC_UNBOUND', { remoteDom }), `remoteDom ${remoteDom}`).toBe('ERR_NO_SUCH_DOMAIN');
    expect(await hv.statsOf(a.domid)).toMatchObject({ ports: 0 });
    expect(await status(a, await alloc(a, a.domid))).toEqual({ state: 'unbound', remoteDom: a.domid });
    expect(await status(a, await alloc(a, idle.domid))).toEqual({ state: 'unbound', remoteDom: idle.domid });
  });

  it('8 rule 2: binding needs remotePort to be unbound(caller) (ERR_BAD_ARGUMENT: for another domain, closed, already bound) in a live domain (ERR_NO_SUCH_DOMAIN)', async () => {
    const a = await hv.guest();
    const b = await hv.guest();
    const c = await hv.guest();
    const p = await alloc(a, b.domid);
    expect(await refusedCode(c, 'EVTCHN_BIND_INTERDOMAIN', { remoteDom: a.domid, remotePort: p }), 'allocated for another domain').toBe('ERR_BAD_ARGUMENT');
    expect(await refusedCode(b, 'EVTCHN_BIND_INTERDOMAIN', { remoteDom: a.domid, remotePort: p + 1 }), 'closed').toBe('ERR_BAD_ARGUMENT');
    expect(await refusedCode(b, 'EVTCHN_BIND_INTERDOMAIN', { remoteDom: 0x7fef, remotePort: p }), 'unknown domain').toBe('ERR_NO_SUCH_DOMAIN');
    expect(await refusedCode(b, 'EVTCHN_BIND_INTERDOMAIN', { remoteDom: 0, remotePort: p }), 'the control domain').toBe('ERR_NO_SUCH_DOMAIN');
    const q = await bind(b, a.domid, p);
    expect(await refusedCode(b, 'EVTCHN_BIND_INTERDOMAIN', { remoteDom: a.domid, remotePort: p }), 'already bound').toBe('ERR_BAD_ARGUMENT');
    expect(await refusedCode(a, 'EVTCHN_BIND_INTERDOMAIN', { remoteDom: b.domid, remotePort: q }), 'an interdomain port').toBe('ERR_BAD_ARGUMENT');
    // No refusal changed anything.
    expect(await status(a, p)).toEqual({ state: 'interdomain', remoteDom: b.domid, remotePort: q });
    expect(await hv.statsOf(b.domid)).toMatchObject({ ports: 1 });
    expect(await hv.statsOf(c.domid)).toMatchObject({ ports: 0 });
  });

  it('8 rule 3: EVTCHN_SEND delivers EVTCHN_EVENT {the peer\'s own port, count >= 1} to the bound peer, both ways; the counts add up to the sends', async () => {
    const a = await hv.guest();
    const b = await hv.guest();
    await alloc(a, b.domid); // port 1, left unbound: a's bound port is 2
    const p = await alloc(a, b.domid);
    const q = await bind(b, a.domid, p);
    expect([p, q]).toEqual([2, 1]);
    for (let i = 0; i < 5; i++) expect(await a.client.call('EVTCHN_SEND', { port: p })).toEqual({});
    const counts = await eventsFor(b, q, 5);
    expect(counts.every((n) => n >= 1)).toBe(true);
    expect(await b.client.call('EVTCHN_SEND', { port: q })).toEqual({});
    expect(await eventsFor(a, p, 1)).toEqual([1]);
    // A domain bound to itself gets the event on its other port.
    const s1 = await alloc(b, b.domid);
    const s2 = await bind(b, b.domid, s1);
    await b.client.call('EVTCHN_SEND', { port: s2 });
    expect(await eventsFor(b, s1, 1)).toEqual([1]);
  });

  it('8 rule 3: sending on a port that is not an interdomain port of the caller (unbound, closed, another domain\'s) gets ERR_BAD_ARGUMENT and delivers nothing', async () => {
    const a = await hv.guest();
    const b = await hv.guest();
    const lone = await alloc(a, b.domid);
    expect(await refusedCode(a, 'EVTCHN_SEND', { port: lone }), 'unbound').toBe('ERR_BAD_ARGUMENT');
    expect(await refusedCode(a, 'EVTCHN_SEND', { port: 4000 }), 'closed').toBe('ERR_BAD_ARGUMENT');
    const p = await alloc(b, a.domid);
    const q = await bind(a, b.domid, p);
    // Port numbers are per domain: a's interdomain port q is not b's (b's port q is closed), and a's port
    // numbered like b's interdomain port p is a's own unbound one.
    expect([p, q]).toEqual([1, 2]);
    expect(await refusedCode(b, 'EVTCHN_SEND', { port: q }), 'another domain\'s port number').toBe('ERR_BAD_ARGUMENT');
    expect(await refusedCode(a, 'EVTCHN_SEND', { port: p }), 'its own unbound port of that number').toBe('ERR_BAD_ARGUMENT');
    expect(await a.client.call('PING', { nonce: 1 })).toEqual({ nonce: 1 });
    expect(a.client.unclaimed().filter((e) => e.type === 'EVTCHN_EVENT')).toEqual([]);
  });

  it('8 rule 4: closing an interdomain port returns the peer\'s port to unbound(closer), which the closer may bind again; closing a closed port gets ERR_BAD_ARGUMENT', async () => {
    const a = await hv.guest();
    const b = await hv.guest();
    const p = await alloc(a, b.domid);
    const q = await bind(b, a.domid, p);
    expect(await b.client.call('EVTCHN_CLOSE', { port: q })).toEqual({});
    expect(await status(b, q)).toEqual({ state: 'closed' });
    expect(await status(a, p)).toEqual({ state: 'unbound', remoteDom: b.domid });
    expect(await refusedCode(a, 'EVTCHN_SEND', { port: p })).toBe('ERR_BAD_ARGUMENT');
    expect(await refusedCode(b, 'EVTCHN_CLOSE', { port: q })).toBe('ERR_BAD_ARGUMENT');
    const again = await bind(b, a.domid, p);
    expect(again).toBe(q);
    await a.client.call('EVTCHN_SEND', { port: p });
    expect(await eventsFor(b, again, 1)).toEqual([1]);
    // The allocator may close its unbound port too.
    const lone = await alloc(a, b.domid);
    expect(await a.client.call('EVTCHN_CLOSE', { port: lone })).toEqual({});
    expect(await status(a, lone)).toEqual({ state: 'closed' });
  });

  it('8 rules 1-2: ports 1..4095 only; with none closed, alloc_unbound and bind get ERR_LIMIT', async () => {
    const a = await hv.guest();
    const b = await hv.guest();
    const ports = await Promise.all(Array.from({ length: 4095 }, () => a.client.request('EVTCHN_ALLOC_UNBOUND', { remoteDom: b.domid })));
    expect(ports.filter((r) => r.kind !== 'res')).toEqual([]);
    expect(new Set(ports.map((r) => (r.body as { port: number }).port))).toEqual(new Set(Array.from({ length: 4095 }, (_, i) => i + 1)));
    expect(await refusedCode(a, 'EVTCHN_ALLOC_UNBOUND', { remoteDom: b.domid })).toBe('ERR_LIMIT');
    const p = await alloc(b, a.domid);
    expect(await refusedCode(a, 'EVTCHN_BIND_INTERDOMAIN', { remoteDom: b.domid, remotePort: p })).toBe('ERR_LIMIT');
    expect(await status(b, p)).toEqual({ state: 'unbound', remoteDom: a.domid });
    expect(await hv.statsOf(a.domid)).toMatchObject({ ports: 4095 });
  });

  it('8 rule 6, 9.2 step 4: a dying domain\'s ports close; its interdomain peers become unbound(dead domain); ports of others unbound(dead domain) stay', async () => {
    const a = await hv.guest();
    const b = await hv.guest();
    const bound = await alloc(a, b.domid);
    await bind(b, a.domid, bound);
    const waiting = await alloc(a, b.domid);
    const died = domainDied(hv.control, b.domid);
    b.client.terminate();
    await died;
    expect(await status(a, bound)).toEqual({ state: 'unbound', remoteDom: b.domid });
    expect(await status(a, waiting)).toEqual({ state: 'unbound', remoteDom: b.domid });
    expect(await refusedCode(a, 'EVTCHN_SEND', { port: bound })).toBe('ERR_BAD_ARGUMENT');
    expect(await hv.statsOf(b.domid)).toBeUndefined();
    expect(await hv.statsOf(a.domid)).toMatchObject({ ports: 2 });
  });
});
