/** Driver options, negotiation answers, the per-buffer serial queue and shadow bookkeeping, without a backend. */
import { describe, expect, it } from 'vitest';
import { DmaBuf, type DmaBufOps } from '../../src/dmabuf/dma-buf.ts';
import { SgTable } from '../../src/dmabuf/sg-table.ts';
import { resolveOptions } from '../../src/hyper-dmabuf/options.ts';
import { PeerNegotiation } from '../../src/hyper-dmabuf/peers.ts';
import { Serial } from '../../src/hyper-dmabuf/serial.ts';
import { ShadowFd } from '../../src/hyper-dmabuf/shadow.ts';
import type { HvClient } from '../../src/transport/hv-client.ts';
import { codeOf } from './world.ts';

describe('options', () => {
  it('default to the issue\'s limits and refuse values past the wire bounds', () => {
    expect(resolveOptions()).toEqual({
      maxPriv: 4096, maxPages: 1024 * 1024, maxExports: 1 << 20, maxImports: 1 << 20,
      formats: ['multilevel', 'linked'], eventQueueDepth: 64, syncMode: 'ack', remapOnMove: 'lazy',
    });
    expect(() => resolveOptions({ maxPriv: 65_537 })).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }));
    expect(() => resolveOptions({ maxPages: 1024 * 1024 + 1 })).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }));
    expect(() => resolveOptions({ formats: [] })).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }));
    expect(() => resolveOptions({ formats: ['linked', 'linked'] })).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }));
  });
});

describe('PeerNegotiation.answer', () => {
  it('picks the importer\'s first preference among those offered, lists all common ones, or refuses', async () => {
    // The answer also names the layers this domain answers (SPEC 6), from its client's handlers.
    const hv = { implementedLayers: () => ['dmabuf', 'fence'] } as unknown as HvClient;
    const p = new PeerNegotiation(hv, resolveOptions({ formats: ['linked', 'multilevel'], maxPriv: 10, maxPages: 20 }));
    expect(p.answer({ formats: ['multilevel', 'linked'], maxPriv: 0, maxPages: 1 })).toEqual({ format: 'linked', formats: ['linked', 'multilevel'], maxPriv: 10, maxPages: 20, layers: ['dmabuf', 'fence'] });
    expect(p.answer({ formats: ['multilevel'], maxPriv: 0, maxPages: 1 }).format).toBe('multilevel');
    const only = new PeerNegotiation(hv, resolveOptions({ formats: ['linked'] }));
    expect(await codeOf(() => only.answer({ formats: ['multilevel'], maxPriv: 0, maxPages: 1 }))).toBe('ERR_NO_COMMON_FORMAT');
  });
});

describe('Serial', () => {
  it('runs steps in order even when earlier ones await or fail', async () => {
    const s = new Serial();
    const log: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const a = s.run(async () => { await gate; log.push(1); });
    const b = s.run(() => { log.push(2); throw new Error('x'); });
    const c = s.run(() => { log.push(3); return 3; });
    release();
    await a;
    await expect(b).rejects.toThrow('x');
    expect(await c).toBe(3);
    expect(log).toEqual([1, 2, 3]);
  });
});

describe('ShadowFd', () => {
  const ops: DmaBufOps = {
    exporter: 'test', mapAttachment: () => new SgTable(1, [1], 0, 4096), unmapAttachment: () => undefined,
    vmap: (b) => new Uint8Array(b.size), vunmap: () => undefined, kmap: () => new Uint8Array(4096), release: () => undefined,
  };

  it('pushes and pops per kind, refuses undos with nothing to undo and detaching a mapped attachment', async () => {
    const buf = new DmaBuf({ ops, geometry: { nents: 2, firstOffset: 0, lastLength: 4096 }, priv: null });
    const sh = new ShadowFd('hyper_dmabuf:dom2:fd1');
    expect(await codeOf(sh.apply(buf, 'detach', 'bidirectional', 0))).toBe('ERR_BAD_ARGUMENT');
    expect(await codeOf(sh.apply(buf, 'map', 'bidirectional', 0))).toBe('ERR_BAD_ARGUMENT');
    await sh.apply(buf, 'attach', 'bidirectional', 0);
    await sh.apply(buf, 'map', 'to_device', 0);
    expect(await codeOf(sh.apply(buf, 'detach', 'bidirectional', 0))).toBe('ERR_BUSY');
    await sh.apply(buf, 'kmap', 'bidirectional', 1);
    expect(await codeOf(sh.apply(buf, 'kunmap', 'bidirectional', 0))).toBe('ERR_BAD_ARGUMENT');
    expect(await codeOf(sh.apply(buf, 'kmap', 'bidirectional', 2))).toBe('ERR_BAD_ARGUMENT');
    await sh.apply(buf, 'begin_cpu_access', 'from_device', 0);
    await sh.apply(buf, 'vmap', 'bidirectional', 0);
    expect(sh.use()).toEqual({ attachments: 1, mappings: 1, cpuAccess: 1, vmaps: 1, kmaps: 1, pins: 0 });
    expect(buf.use()).toMatchObject({ attachments: 1, mappings: 1, cpuAccess: 1, vmaps: 1, kmaps: 1 });
    expect(await sh.undoAll(buf)).toEqual({ undone: 5, failed: 0 });
    expect(buf.use()).toMatchObject({ attachments: 0, mappings: 0, cpuAccess: 0, vmaps: 0, kmaps: 0 });
    expect(sh.outstanding).toBe(0);
  });
});
