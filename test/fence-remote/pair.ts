/**
 * In-process peers: a real backend and real guest kernels (WebSocket,
 * shared-memory RAM and grant tables, event channels) in the test process,
 * each with a FenceHost. Faster than processes, and a kernel can be made to
 * "crash" by dropping its connection. afterEach shuts everything down and
 * checks that no shm file of the run is left.
 */
import { readdirSync } from 'node:fs';
import { afterEach, expect } from 'vitest';
import { Backend } from '../../src/hv/backend.ts';
import { GuestKernel } from '../../src/guest/kernel.ts';
import { FenceHost, type FenceHostOptions } from '../../src/fence-remote/fence-host.ts';

/** One domain: its kernel and its fence layer. */
export interface Peer {
  readonly domid: number;
  readonly kernel: GuestKernel;
  readonly host: FenceHost;
}

const backends: Backend[] = [];
const peers: Peer[] = [];

afterEach(async () => {
  for (const p of peers.splice(0).reverse()) {
    await p.host.shutdown().catch(() => undefined);
    await p.kernel.shutdown().catch(() => undefined);
  }
  const tags: string[] = [];
  for (const hv of backends.splice(0)) {
    tags.push(hv.runTag);
    await hv.close();
  }
  expect(readdirSync('/dev/shm').filter((n) => tags.some((t) => n.startsWith(`${t}-`)))).toEqual([]);
});

/** Starts a backend for this test. */
export async function startBackend(): Promise<Backend> {
  const hv = await Backend.start({ log: () => undefined });
  backends.push(hv);
  return hv;
}

/** Creates a domain, boots its kernel in this process and gives it a FenceHost. */
export async function startPeer(hv: Backend, name: string, options: FenceHostOptions = {}): Promise<Peer> {
  const created = await hv.createDomain({ name, memPages: 256 });
  const kernel = await GuestKernel.boot({ url: hv.url, ...created, memPages: 256, name });
  const host = new FenceHost(kernel, options);
  const peer = { domid: created.domid, kernel, host };
  peers.push(peer);
  return peer;
}

/** A backend and `n` peers that have seen each other come up. */
export async function startPeers(n: number, options: FenceHostOptions = {}): Promise<{ hv: Backend; peers: Peer[] }> {
  const hv = await startBackend();
  const list: Peer[] = [];
  for (let i = 0; i < n; i++) list.push(await startPeer(hv, `p${i + 1}`, options));
  return { hv, peers: list };
}

/** Simulates a crash: the kernel's connection drops without any goodbye. */
export async function crash(p: Peer): Promise<void> {
  await p.kernel.hv.conn.destroy();
}

/** The backend's view of one domain. */
export function domainStats(hv: Backend, domid: number) {
  return hv.stats().domains.find((d) => d.domid === domid);
}

/** Every resource the fence layer of `p` holds, for leak checks. */
export function fenceResources(p: Peer) {
  const s = p.host.stats();
  const k = p.kernel.stats();
  return {
    ownTimelines: s.owner.timelines + s.owner.timelinesClosing,
    grantsLive: s.owner.grantsLive,
    slotsUsed: s.owner.slotsUsed,
    imports: s.observer.timelines,
    mappings: k.mapper.liveMappings,
    ports: k.ports,
    grantedRefs: k.grants.granted + k.grants.deferred,
    usedPages: k.usedPages,
  };
}

/** What a domain holds when the fence layer holds nothing. */
export const NOTHING = { ownTimelines: 0, grantsLive: 0, slotsUsed: 0, imports: 0, mappings: 0, ports: 0, grantedRefs: 0, usedPages: 0 };

/**
 * Resolves once `condition` holds: looked at at once, then after each frame
 * one of `peers` receives (a peer's fence layer and the backend's view of
 * it change only when a message or a reply reaches a peer; the look runs
 * once the handlers that frame started have run, setImmediate). Rejects
 * after `ms`, which only fails the test, never decides it.
 */
export function afterFramesOf(peers: readonly Peer[], condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  if (condition()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    let settled = false;
    const offs: Array<() => void> = [];
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      for (const off of offs) off();
      if (error) reject(error);
      else resolve();
    };
    const timer = setTimeout(() => finish(condition() ? undefined : new Error(`${what}: not reached within ${ms} ms`)), ms);
    const look = (): void => { setImmediate(() => { if (!settled && condition()) finish(); }); };
    for (const p of peers) {
      const conn = p.kernel.hv.conn;
      conn.on('frame', look);
      offs.push(() => conn.off('frame', look));
    }
  });
}
