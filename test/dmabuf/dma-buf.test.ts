/**
 * The local dma-buf model: geometry, scatter-gather tables, the buffer's
 * reference counting, attachments, mappings, CPU access, vmap counting, and
 * the undo of leftovers at the last put. Uses a recording exporter (no memory).
 */
import { describe, expect, it } from 'vitest';
import { DmaBuf, DmaBufState, type DmaBufOps } from '../../src/dmabuf/dma-buf.ts';
import { bufferSize, checkGeometry, geometryFor } from '../../src/dmabuf/geometry.ts';
import { SgTable } from '../../src/dmabuf/sg-table.ts';

describe('geometry', () => {
  it('derives pages, first offset and last length from a size', () => {
    expect(geometryFor(1920 * 1080 * 4)).toEqual({ nents: 2025, firstOffset: 0, lastLength: 4096 });
    expect(geometryFor(1, 4095)).toEqual({ nents: 1, firstOffset: 4095, lastLength: 4096 });
    expect(geometryFor(2, 4095)).toEqual({ nents: 2, firstOffset: 4095, lastLength: 1 });
    expect(geometryFor(100, 10)).toEqual({ nents: 1, firstOffset: 10, lastLength: 110 });
    for (const [size, off] of [[1, 0], [4096, 0], [4097, 3], [123_457, 4000]] as const) expect(bufferSize(geometryFor(size, off))).toBe(size);
  });

  it('refuses geometries that describe no data', () => {
    expect(() => geometryFor(0)).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }));
    expect(() => geometryFor(10, 4096)).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }));
    expect(() => checkGeometry({ nents: 1, firstOffset: 100, lastLength: 100 })).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }));
    expect(() => checkGeometry({ nents: 2, firstOffset: 0, lastLength: 0 })).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }));
    expect(() => checkGeometry({ nents: 2, firstOffset: 0, lastLength: 4097 })).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }));
  });
});

describe('SgTable', () => {
  it('merges adjacent frames into entries and applies the geometry', () => {
    const sgt = new SgTable(3, [10, 11, 12, 40, 41, 7], 100, 50);
    expect(sgt.nents).toBe(6);
    expect(sgt.size).toBe(5 * 4096 + 50 - 100);
    expect(sgt.entries()).toEqual([
      { frame: 10, offset: 100, length: 3 * 4096 - 100 },
      { frame: 40, offset: 0, length: 2 * 4096 },
      { frame: 7, offset: 0, length: 50 },
    ]);
    const total = sgt.entries().reduce((n, e) => n + e.length, 0);
    expect(total).toBe(sgt.size);
    const frames = sgt.frames();
    frames[0] = 99;
    expect(sgt.frames()[0]).toBe(10);
  });
});

/** An exporter that records every call and hands out a plain ArrayBuffer as its "vmap". */
function recordingOps(): { ops: DmaBufOps; calls: string[] } {
  const calls: string[] = [];
  const ops: DmaBufOps = {
    exporter: 'recorder',
    attach: (_b, a) => { calls.push(`attach ${a.device}`); },
    detach: (_b, a) => { calls.push(`detach ${a.device}`); },
    mapAttachment: (a, dir) => { calls.push(`map ${a.device} ${dir}`); return new SgTable(1, [5, 6], 0, 4096); },
    unmapAttachment: (a, _s, dir) => { calls.push(`unmap ${a.device} ${dir}`); },
    beginCpuAccess: (_b, dir) => { calls.push(`begin ${dir}`); },
    endCpuAccess: (_b, dir) => { calls.push(`end ${dir}`); },
    vmap: async (b) => { calls.push('vmap'); return new Uint8Array(b.size); },
    vunmap: () => { calls.push('vunmap'); },
    kmap: (_b, page) => { calls.push(`kmap ${page}`); return new Uint8Array(4096); },
    kunmap: (_b, page) => { calls.push(`kunmap ${page}`); },
    release: () => { calls.push('release'); },
  };
  return { ops, calls };
}

const twoPages = { nents: 2, firstOffset: 0, lastLength: 4096 };

describe('DmaBuf', () => {
  it('releases on the last put only, and refuses use afterwards', async () => {
    const { ops, calls } = recordingOps();
    const buf = new DmaBuf({ ops, geometry: twoPages, priv: null });
    buf.get();
    expect(buf.refcount).toBe(2);
    await buf.put();
    expect(calls).toEqual([]);
    await buf.put();
    expect(calls).toEqual(['release']);
    expect(buf.state).toBe(DmaBufState.Released);
    await expect(buf.attach('gpu')).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
    expect(() => buf.put()).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }));
    expect(buf.leftovers).toBe(0);
  });

  it('attaches, maps, unmaps and detaches; detaching a mapped attachment is ERR_BUSY', async () => {
    const { ops, calls } = recordingOps();
    const buf = new DmaBuf({ ops, geometry: twoPages, priv: null });
    const att = await buf.attach('gpu');
    const sgt = await buf.map(att, 'to_device');
    expect(sgt.nents).toBe(2);
    await expect(buf.detach(att)).rejects.toMatchObject({ code: 'ERR_BUSY' });
    await buf.unmap(att, sgt);
    await expect(buf.unmap(att, sgt)).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
    await buf.detach(att);
    await expect(buf.map(att)).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
    expect(calls).toEqual(['attach gpu', 'map gpu to_device', 'unmap gpu to_device', 'detach gpu']);
    expect(buf.use()).toMatchObject({ attachments: 0, mappings: 0 });
  });

  it('counts vmaps: one exporter vmap for many users, vunmap at the last', async () => {
    const { ops, calls } = recordingOps();
    const buf = new DmaBuf({ ops, geometry: twoPages, priv: null });
    const [a, b] = await Promise.all([buf.vmap(), buf.vmap()]);
    expect(a).toBe(b);
    expect(a!.byteLength).toBe(8192);
    await buf.vunmap(a!);
    expect(calls).toEqual(['vmap']);
    await buf.vunmap(a!);
    expect(calls).toEqual(['vmap', 'vunmap']);
    await expect(buf.vunmap(a!)).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
  });

  it('pairs CPU access and checks kmap bounds', async () => {
    const { ops, calls } = recordingOps();
    const buf = new DmaBuf({ ops, geometry: twoPages, priv: null });
    await expect(buf.endCpuAccess()).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
    await buf.beginCpuAccess('from_device');
    await buf.endCpuAccess('from_device');
    await expect(buf.kmap(2)).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
    const v = await buf.kmap(1);
    await buf.kunmap(1, v);
    expect(calls).toEqual(['begin from_device', 'end from_device', 'kmap 1', 'kunmap 1']);
  });

  it('undoes leftovers newest first at the last put, then releases', async () => {
    const { ops, calls } = recordingOps();
    const buf = new DmaBuf({ ops, geometry: twoPages, priv: null });
    const att = await buf.attach('gpu');
    await buf.map(att);
    await buf.beginCpuAccess();
    await buf.vmap();
    await buf.kmap(0);
    calls.length = 0;
    await buf.put();
    expect(calls).toEqual(['kunmap 0', 'vunmap', 'end bidirectional', 'unmap gpu bidirectional', 'detach gpu', 'release']);
    expect(buf.leftovers).toBe(5);
  });

  it('still releases when an undo fails', async () => {
    const { ops, calls } = recordingOps();
    const buf = new DmaBuf({ ops: { ...ops, detach: () => { throw new Error('peer gone'); } }, geometry: twoPages, priv: null });
    await buf.attach('gpu');
    await buf.put();
    expect(calls).toEqual(['attach gpu', 'release']);
    expect(buf.undoErrors).toBe(1);
  });
});
