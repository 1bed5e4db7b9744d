/**
 * In-process worlds for the driver tests: one Backend and a few guest
 * kernels, each with its hyper_dmabuf driver, all in the test process.
 * afterEach tears everything down (drivers, kernels, backend) and checks
 * that no shared-memory file of the run remains.
 */
import { readdirSync } from 'node:fs';
import { afterEach, expect } from 'vitest';
import type { EventDecl, EventOf } from '../../protocol/index.ts';
import type { HvClient } from '../../src/transport/hv-client.ts';
import { Backend, type BackendOptions } from '../../src/hv/backend.ts';
import { GuestKernel } from '../../src/guest/kernel.ts';
import { HyperDmabuf, type HyperDmabufOptions } from '../../src/hyper-dmabuf/index.ts';
import { nativeMem } from '../../src/memory/native.ts';
import { liveStates } from '../helpers/leaks.ts';

/** A guest with its driver. */
export interface Dom {
  readonly domid: number;
  readonly kernel: GuestKernel;
  readonly driver: HyperDmabuf;
}

/** A guest without the driver: the test plays its part by hand (a hostile or stalled peer). */
export interface BareDom {
  readonly domid: number;
  readonly kernel: GuestKernel;
}

/** A backend and its guests. */
export interface World {
  readonly hv: Backend;
  readonly doms: Dom[];
  readonly bare: BareDom[];
  /** Boots one more guest. */
  add(opts?: DomOptions): Promise<Dom>;
  /** Boots one more guest without loading the driver. */
  addBare(opts?: DomOptions): Promise<BareDom>;
}

/** Per-guest options. */
export interface DomOptions {
  memPages?: number;
  maxGrantFrames?: number;
  /** Highest protocol version the guest offers (default: this implementation's). */
  maxVersion?: number;
  driver?: HyperDmabufOptions;
}

const worlds: World[] = [];
const liveBefore = { value: 0 };

afterEach(async () => {
  const tags: string[] = [];
  for (const w of worlds.splice(0)) {
    for (const d of w.doms) d.driver.close();
    await Promise.all([...w.doms, ...w.bare].map((d) => d.kernel.shutdown()));
    tags.push(w.hv.runTag);
    await w.hv.close();
  }
  expect(readdirSync('/dev/shm').filter((n) => tags.some((t) => n.startsWith(`${t}-`)))).toEqual([]);
  expect(nativeMem.liveMappings()).toBe(liveBefore.value);
});

/** Starts a backend and `n` guests (default options for each unless given). */
export async function startWorld(n: number, opts: DomOptions | DomOptions[] = {}, backend: BackendOptions = {}): Promise<World> {
  if (worlds.length === 0) liveBefore.value = nativeMem.liveMappings();
  const hv = await Backend.start(backend);
  const doms: Dom[] = [];
  const bare: BareDom[] = [];
  const boot = async (o: DomOptions): Promise<BareDom> => {
    const memPages = o.memPages ?? 16_384;
    const created = await hv.createDomain({ name: `g${doms.length + bare.length + 1}`, memPages, ...(o.maxGrantFrames ? { maxGrantFrames: o.maxGrantFrames } : {}) });
    const kernel = await GuestKernel.boot({
      url: hv.url, domid: created.domid, token: created.token, ramPath: created.ramPath, grantTablePath: created.grantTablePath,
      memPages, maxGrantFrames: created.maxGrantFrames, retry: { minDelayMs: 5, maxDelayMs: 50 },
      ...(o.maxVersion !== undefined ? { maxVersion: o.maxVersion } : {}),
    });
    return { domid: created.domid, kernel };
  };
  const world: World = {
    hv, doms, bare,
    async add(o: DomOptions = {}) {
      const b = await boot(o);
      const dom = { ...b, driver: HyperDmabuf.load(b.kernel, o.driver) };
      doms.push(dom);
      return dom;
    },
    async addBare(o: DomOptions = {}) {
      const b = await boot(o);
      bare.push(b);
      return b;
    },
  };
  worlds.push(world);
  for (let i = 0; i < n; i++) await world.add(Array.isArray(opts) ? opts[i] : opts);
  return world;
}

/** Resolves with the next event of a type that a client receives. */
export function nextEvent<D extends EventDecl>(client: HvClient, decl: D): Promise<EventOf<D>> {
  return new Promise((resolve) => {
    const off = client.onEventOf(decl, (body) => { off(); resolve(body); });
  });
}

/** The rejection code of a promise (fails if it resolves). */
export async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    throw e;
  }
  throw new Error('expected a rejection');
}

/** Fills bytes with a pattern that differs for every byte offset of every page: (i * 7 + seed) mod 251. */
export function fillPattern(view: Uint8Array, seed = 1): void {
  for (let i = 0; i < view.length; i++) view[i] = (i * 7 + seed) % 251;
}

/** Index of the first byte that differs from the pattern, or -1. */
export function checkPattern(view: Uint8Array, seed = 1): number {
  for (let i = 0; i < view.length; i++) if (view[i] !== (i * 7 + seed) % 251) return i;
  return -1;
}

/**
 * Asserts the guests hold nothing of the driver any more (no export, import,
 * grant or mapping), and the backend no busy grant or mapping. Guests the
 * backend no longer lists as running (killed by a test) are skipped.
 */
export function expectClean(world: World): void {
  const running = new Set(world.hv.stats().domains.filter((d) => d.state === 'running').map((d) => d.domid));
  for (const d of world.doms) {
    if (!running.has(d.domid)) continue;
    const s = d.driver.stats();
    expect(liveStates(s.exporter.byState), `dom${d.domid} exports`).toEqual([]);
    expect(liveStates(s.importer.byState), `dom${d.domid} imports`).toEqual([]);
    const k = d.kernel.stats();
    expect({ dom: d.domid, granted: k.grants.granted, deferred: k.grants.deferred, mappings: k.mapper.liveMappings }).toEqual({ dom: d.domid, granted: 0, deferred: 0, mappings: 0 });
  }
  for (const s of world.hv.stats().domains) {
    expect({ dom: s.domid, busy: s.busyGrants, mappings: s.mappings, inUse: s.grantsInUse })
      .toEqual({ dom: s.domid, busy: 0, mappings: 0, inUse: 0 });
  }
}
