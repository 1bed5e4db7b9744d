/**
 * The backend's per-connection budgets and admission rules (SPEC.md 3.7),
 * and internal errors (SPEC 6.1 rule 9), in-process.
 */
import { createConnection } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { PING } from '../../protocol/messages/session.ts';
import { RpcConnection } from '../../src/transport/rpc-connection.ts';
import { RawClient } from '../../vm-sim/stress/raw-client.ts';
import { errorCode, onCleanup, RawPeer, startBackend } from './helpers.ts';

/** A log sink that resolves waiters when a line matching their pattern arrives. */
function logWatcher() {
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  return {
    log: (line: string) => {
      lines.push(line);
      for (const w of [...waiters]) if (w.re.test(line)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(line); }
    },
    next: (re: RegExp) => {
      const seen = lines.find((l) => re.test(l));
      return seen !== undefined ? Promise.resolve(seen) : new Promise<string>((resolve) => waiters.push({ re, resolve }));
    },
  };
}

describe('internal errors (SPEC 6.1 rule 9)', () => {
  it('a reply of ours that fails its declaration goes out as ERR_INTERNAL and is reported, never as the requester\'s fault', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    onCleanup(() => new Promise<void>((r) => wss.close(() => r())));
    await new Promise((r) => wss.once('listening', r));
    const accepted = new Promise<RpcConnection>((resolve) => wss.once('connection', (ws) => resolve(new RpcConnection(ws, { name: 'server' }))));
    const ws = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
    const client = new RpcConnection(ws, { name: 'client' });
    onCleanup(() => client.destroy());
    await new Promise((r) => ws.once('open', r));
    const server = await accepted;
    onCleanup(() => server.destroy());
    const internal: unknown[] = [];
    server.on('internalError', (e: unknown) => internal.push(e));
    // A handler bug: nonce out of its declared range (uint32).
    server.onRequest(() => ({ nonce: 2 ** 33 }));
    expect(await errorCode(client.request(PING, { nonce: 1 }))).toBe('ERR_INTERNAL');
    expect(internal).toHaveLength(1);
    expect(String(internal[0])).toMatch(/body\.nonce/);
    // The connection still serves.
    server.onRequest(({ env }) => env.body);
    expect(await client.request(PING, { nonce: 9 })).toEqual({ nonce: 9 });
  });
});

describe('admission (SPEC 3.7)', () => {
  it('a WebSocket handshake that has not completed by the HELLO deadline is cut off', async () => {
    const hv = await startBackend({ helloTimeoutMs: 200 });
    const url = new URL(hv.url);
    const sock = createConnection({ host: url.hostname, port: Number(url.port) });
    sock.on('error', () => undefined);
    onCleanup(() => { sock.destroy(); });
    await new Promise((r) => sock.once('connect', r));
    sock.write('GET / HTTP/1.1\r\nHost: x\r\nUpg');
    await new Promise((r) => sock.once('close', r));
    expect(sock.destroyed).toBe(true);
  });

  it('the deadline counts from the TCP accept: an upgraded connection without HELLO is closed with 1008', async () => {
    const hv = await startBackend({ helloTimeoutMs: 200 });
    const peer = await RawPeer.open(hv.url);
    expect(await peer.closed).toBe(1008);
  });

  it('at most maxUnauthenticated connections wait for HELLO at once; one that authenticates frees its place', async () => {
    const hv = await startBackend({ maxUnauthenticated: 2 });
    const d = await hv.createDomain({ name: 'later', memPages: 16 });
    const first = await RawClient.open(hv.url);
    const second = await RawClient.open(hv.url);
    onCleanup(() => { first.terminate(); second.terminate(); });
    await expect(RawClient.open(hv.url)).rejects.toThrow();
    // HELLO on the first: it no longer counts.
    first.send({ v: 1, kind: 'req', type: 'HELLO', id: 1, body: { minVersion: 1, maxVersion: 1, domid: d.domid, token: d.token, caps: [] } });
    expect(await first.next((e) => e.id === 1, 5000)).toMatchObject({ kind: 'res' });
    const third = await RawClient.open(hv.url);
    onCleanup(() => { third.terminate(); });
    expect(third.isOpen).toBe(true);
  });
});

describe('budgets (SPEC 3.7)', () => {
  it('requests in flight beyond maxRequestsInFlight get ERR_LIMIT; answering frees the place', async () => {
    const hv = await startBackend({ maxRequestsInFlight: 2 });
    const a = await hv.createDomain({ name: 'a', memPages: 16 });
    const b = await hv.createDomain({ name: 'b', memPages: 16 });
    const ca = await RawClient.connect(hv.url, a.domid, a.token);
    const cb = await RawClient.connect(hv.url, b.domid, b.token);
    onCleanup(() => { ca.terminate(); cb.terminate(); });
    const echo = (id: number) => ({ v: 1, kind: 'req' as const, type: 'ECHO', id, dst: b.domid, body: { payload: new Uint8Array(1) } });
    ca.send(echo(11));
    ca.send(echo(12));
    ca.send(echo(13));
    expect(await ca.next((e) => e.id === 13, 5000)).toMatchObject({ kind: 'err', body: { code: 'ERR_LIMIT' } });
    const first = await cb.next((e) => e.kind === 'req' && e.type === 'ECHO', 5000);
    cb.send({ v: 1, kind: 'res', type: 'ECHO', id: first!.id, dst: a.domid, body: { payload: new Uint8Array(1) } });
    expect(await ca.next((e) => e.id === 11, 5000)).toMatchObject({ kind: 'res' });
    ca.send(echo(14));
    expect(await cb.next((e) => e.kind === 'req' && e.type === 'ECHO' && e.id !== first!.id, 5000)).toBeDefined();
  });

  it('a connection over its send budget is not read until it drains, then everything it sent is answered in order', async () => {
    const watch = logWatcher();
    const hv = await startBackend({ backpressureBytes: 64 * 1024, log: watch.log });
    const d = await hv.createDomain({ name: 'slow-reader', memPages: 16 });
    const c = await RawClient.connect(hv.url, d.domid, d.token);
    onCleanup(() => { c.terminate(); });
    c.ws.pause();
    // PING replies are small; ECHOs routed to itself come back as 256 KiB requests it does not read
    // (10 MiB in all: more than the kernel's socket buffers hold, so the backend's own queue grows).
    for (let i = 0; i < 40; i++) c.send({ v: 1, kind: 'req', type: 'ECHO', id: 100 + i, dst: d.domid, body: { payload: new Uint8Array(256 * 1024) } });
    for (let i = 0; i < 40; i++) c.send({ v: 1, kind: 'req', type: 'PING', id: 200 + i, body: { nonce: i } });
    expect(await watch.next(/over its send budget/)).toMatch(new RegExp(`d${d.domid}`));
    c.ws.resume();
    await watch.next(/drained: reading it again/);
    // Every PING is answered, in order, after the routed ECHOs it let through or refused.
    const nonces: number[] = [];
    for (let i = 0; i < 40; i++) {
      const r = await c.next((e) => e.type === 'PING' && e.kind === 'res', 10_000);
      nonces.push((r!.body as { nonce: number }).nonce);
    }
    expect(nonces).toEqual(Array.from({ length: 40 }, (_, i) => i));
  }, 20_000);

  it('the work reserve of a batch being handled counts against the send budget: a domain that reads everything is still paused while its batches are built, and every batch is answered', async () => {
    const watch = logWatcher();
    // A 16,384-entry batch reserves 4,096 + 16,384 x 64 bytes: just over this budget on its own.
    const hv = await startBackend({ backpressureBytes: 1024 * 1024, log: watch.log });
    const d = await hv.createDomain({ name: 'batcher', memPages: 16 });
    const c = await RawClient.connect(hv.url, d.domid, d.token);
    onCleanup(() => { c.terminate(); });
    const refs = Array.from({ length: 16_384 }, (_, i) => 1_000_000 + i);
    for (let i = 0; i < 6; i++) c.send({ v: 1, kind: 'req', type: 'GNTTAB_MAP_GRANT_REF', id: 300 + i, body: { dom: d.domid, flags: 1, refs } });
    const paused = await watch.next(/over its send budget \((\d+) bytes/);
    expect(Number(/\((\d+) bytes/.exec(paused)![1])).toBeGreaterThanOrEqual(4096 + 16_384 * 64);
    for (let i = 0; i < 6; i++) {
      const r = await c.next((e) => e.id === 300 + i && e.kind !== 'evt', 10_000);
      expect(r?.kind).toBe('res');
      expect((r!.body as { status: number[] }).status).toHaveLength(16_384);
    }
    await watch.next(/drained: reading it again/);
  }, 20_000);
});
