/**
 * In-process worlds for the dma-buf sync tests: one Backend and a few guest
 * kernels in the test process, each with its hyper_dmabuf driver, its
 * cross-VM fence layer and the sync layer over both. afterEach unloads
 * everything in the close-cascade order (sync layer, fence layer, driver,
 * kernel, backend) and checks that no shared-memory file and no native
 * mapping of the run remains.
 */
import { readdirSync } from 'node:fs';
import { afterEach, expect } from 'vitest';
import { Backend } from '../../src/hv/backend.ts';
import { GuestKernel } from '../../src/guest/kernel.ts';
import { FenceHost } from '../../src/fence-remote/fence-host.ts';
import { HyperDmabuf, type Hid } from '../../src/hyper-dmabuf/index.ts';
import { DmabufSync, type DmabufSyncOptions, type ImportedFd } from '../../src/hyper-dmabuf/sync/index.ts';
import type { DmaBuf } from '../../src/dmabuf/dma-buf.ts';
import type { SystemHeapPriv } from '../../src/dmabuf/system-heap.ts';
import { nativeMem } from '../../src/memory/native.ts';

/** One domain: kernel, driver, fence layer, sync layer. */
export interface SyncDom {
  readonly domid: number;
  readonly kernel: GuestKernel;
  readonly driver: HyperDmabuf;
  readonly fences: FenceHost;
  readonly sync: DmabufSync;
}

/** A backend and its domains. */
export interface SyncWorld {
  readonly hv: Backend;
  readonly doms: SyncDom[];
}

const worlds: SyncWorld[] = [];
let liveBefore = 0;

afterEach(async () => {
  const tags: string[] = [];
  for (const w of worlds.splice(0)) {
    for (const d of w.doms) d.sync.close();
    await Promise.all(w.doms.map((d) => d.fences.shutdown()));
    for (const d of w.doms) d.driver.close();
    await Promise.all(w.doms.map((d) => d.kernel.shutdown()));
    tags.push(w.hv.runTag);
    await w.hv.close();
  }
  expect(readdirSync('/dev/shm').filter((n) => tags.some((t) => n.startsWith(`${t}-`)))).toEqual([]);
  expect(nativeMem.liveMappings()).toBe(liveBefore);
});

/** Starts a backend and `n` domains. */
export async function startSyncWorld(n: number, options: DmabufSyncOptions = {}): Promise<SyncWorld> {
  if (worlds.length === 0) liveBefore = nativeMem.liveMappings();
  const hv = await Backend.start({ log: () => undefined });
  const world: SyncWorld = { hv, doms: [] };
  worlds.push(world);
  for (let i = 0; i < n; i++) {
    const memPages = 2048;
    const created = await hv.createDomain({ name: `d${i + 1}`, memPages });
    const kernel = await GuestKernel.boot({
      url: hv.url, domid: created.domid, token: created.token, ramPath: created.ramPath, grantTablePath: created.grantTablePath,
      memPages, maxGrantFrames: created.maxGrantFrames, retry: { minDelayMs: 5, maxDelayMs: 50 },
    });
    const driver = HyperDmabuf.load(kernel);
    const fences = new FenceHost(kernel);
    world.doms.push({ domid: created.domid, kernel, driver, fences, sync: DmabufSync.load(driver, fences, options) });
  }
  return world;
}

/** A buffer of `exp`, exported to `imp`, and an fd `imp` opened on it. */
export interface Shared {
  buf: DmaBuf<SystemHeapPriv>;
  hid: Hid;
  fd: ImportedFd;
}

/** Allocates a buffer in `exp`, exports it to `imp` (access as given) and opens an fd on it there. */
export async function share(exp: SyncDom, imp: SyncDom, bytes = 8192, access: 'ro' | 'rw' = 'ro'): Promise<Shared> {
  const buf = exp.driver.heap.alloc(bytes);
  const hid = await exp.driver.exportRemote(buf, imp.domid, { access });
  imp.driver.tryReadEvent();
  const fd = (await imp.driver.exportFd(hid)) as ImportedFd;
  return { buf, hid, fd };
}

/** Releases the fd, unexports, waits for the release and drops the buffer. */
export async function unshare(exp: SyncDom, s: Shared): Promise<void> {
  if (s.fd.state === 'live') await s.fd.put();
  await exp.driver.unexport(s.hid);
  await exp.driver.waitReleased(s.hid, 10_000);
  await s.buf.put();
}

/** The rejection code of a promise (fails if it resolves). */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    throw e;
  }
  throw new Error('expected a rejection');
}
