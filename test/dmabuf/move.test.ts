/**
 * Moves of a movable system-heap buffer, in one process over a real guest-RAM
 * file (no backend): data survives, old frames are scrubbed and freed only
 * after every dynamic importer let go, CPU views are detached and fetched
 * again, and the MoveGate orders moves after pins, static mappings and CPU
 * access. No test waits on time: a move that must not complete is checked
 * after the event loop had every chance to run it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Attachment, DynamicImporterOps } from '../../src/dmabuf/dma-buf.ts';
import { MoveGateState } from '../../protocol/machines/move-gate.ts';
import type { SgTable } from '../../src/dmabuf/sg-table.ts';
import type { SystemHeap } from '../../src/dmabuf/system-heap.ts';
import { noTwoAdjacent } from '../../src/guest/frame-runs.ts';
import type { GuestRam } from '../../src/guest/guest-ram.ts';
import type { PageAllocator } from '../../src/guest/page-allocator.ts';
import { nativeMem } from '../../src/memory/native.ts';
import { openHeapFixture, type HeapFixture } from './heap-fixture.ts';

const MEM_PAGES = 4096;
let fixture: HeapFixture;
let ram: GuestRam;
let heap: SystemHeap;
let allocator: PageAllocator;
let liveBefore: number;

beforeEach(() => {
  fixture = openHeapFixture('move', MEM_PAGES);
  ({ ram, allocator, heap } = fixture);
  liveBefore = nativeMem.liveMappings();
});

afterEach(() => {
  expect(nativeMem.liveMappings()).toBe(liveBefore);
  fixture.close();
});

/** Lets every pending callback, timer of 0 ms and I/O completion run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** A promise's state without waiting for it. */
function track<T>(p: Promise<T>): { readonly done: boolean; readonly p: Promise<T> } {
  const t = { done: false, p };
  p.then(() => { t.done = true; }, () => { t.done = true; });
  return t;
}

const fill = (v: Uint8Array, seed: number): void => { for (let i = 0; i < v.length; i++) v[i] = (i * 13 + seed) % 251; };
const bad = (v: Uint8Array, seed: number): number => { for (let i = 0; i < v.length; i++) if (v[i] !== (i * 13 + seed) % 251) return i; return -1; };

/** Dynamic importer ops whose moveNotify answers only when the test says. */
function heldNotify(): { ops: DynamicImporterOps; calls: string[]; to: SgTable[]; release: () => void; ack: () => void } {
  const calls: string[] = [];
  const to: SgTable[] = [];
  let ack!: () => void;
  let release!: () => void;
  const acked = new Promise<void>((r) => { ack = r; });
  const released = new Promise<void>((r) => { release = r; });
  return {
    calls, to, ack, release,
    ops: {
      prepareMove: (_att: Attachment, t: SgTable) => { calls.push('prepare'); to.push(t); },
      abortMove: () => { calls.push('abort'); },
      moveNotify: async () => { calls.push('notify'); await acked; return { released }; },
    },
  };
}

describe('moving a buffer', () => {
  it('a fixed buffer cannot move', async () => {
    const buf = heap.alloc(4096);
    expect(buf.movable).toBe(false);
    await expect(buf.move()).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
    await buf.put();
  });

  it('copies the data to new frames, detaches the old views, scrubs and frees the old frames', async () => {
    const free0 = allocator.freePages;
    const buf = heap.alloc(40 * 4096 - 100, { movable: true, scattered: true, firstOffset: 100 });
    const old = buf.priv.frames.slice();
    const view = await buf.vmap();
    fill(view, 3);
    const page = await buf.kmap(2);
    expect(page.byteLength).toBe(4096);
    const r = await buf.move();
    expect(r).toMatchObject({ generation: 1, pages: 40, notified: 0, notifyErrors: 0, waitedFor: [] });
    expect(buf.generation).toBe(1);
    // Every old frame is back in the allocator, zeroed; the new ones are scattered too.
    const now = buf.priv.frames;
    expect(old.some((f) => now.includes(f))).toBe(false);
    expect(noTwoAdjacent(now)).toBe(true);
    for (const f of old) {
      expect(allocator.isAllocated(f)).toBe(false);
      expect(ram.page(f).every((b) => b === 0)).toBe(true);
    }
    expect(allocator.freePages).toBe(free0 - 40);
    // The views of the old frames are dead; a new vmap shows the same data.
    expect(view.byteLength).toBe(0);
    expect(page.byteLength).toBe(0);
    const fresh = await buf.vmap();
    expect(fresh.byteLength).toBe(buf.size);
    expect(bad(fresh, 3)).toBe(-1);
    // Both holds are released with the views they returned, stale or not.
    await buf.vunmap(view);
    await buf.vunmap(fresh);
    await buf.kunmap(2, page);
    expect(heap.stats()).toMatchObject({ moves: 1, retiring: 0 });
    await buf.put();
    expect(allocator.freePages).toBe(free0);
  });

  it('a one-run buffer moves too: its views are mappings of their own', async () => {
    const buf = heap.alloc(16 * 4096, { movable: true });
    const v = await buf.vmap();
    fill(v, 9);
    await buf.move();
    await buf.move();
    expect(v.byteLength).toBe(0);
    const w = await buf.vmap();
    expect(bad(w, 9)).toBe(-1);
    expect(buf.generation).toBe(2);
    await buf.vunmap(v);
    await buf.vunmap(w);
    await buf.put();
  });

  it('runs the dynamic importer steps in order; the old frames wait for its release', async () => {
    const buf = heap.alloc(8 * 4096, { movable: true });
    fill(await buf.vmap(), 1);
    const imp = heldNotify();
    const att = await buf.attach('gpu', imp.ops);
    expect(att.dynamic).toBe(true);
    const old = buf.priv.frames.slice();
    const move = track(buf.move());
    await settle();
    expect(imp.calls).toEqual(['prepare', 'notify']);
    // The importer was handed the new location; the data is there already.
    expect(Array.from(imp.to[0]!.frames())).toEqual(Array.from(buf.priv.frames));
    expect(buf.gate.state).toBe(MoveGateState.Moving);
    // While moving, a CPU access and a pin wait for the move.
    const access = track(buf.beginCpuAccess('from_device'));
    const pin = track(buf.pin());
    await settle();
    expect({ access: access.done, pin: pin.done, move: move.done }).toEqual({ access: false, pin: false, move: false });
    imp.ack();
    await access.p;
    await pin.p;
    // The buffer no longer moves, but the old frames stay until the importer released them.
    expect(buf.gate.state).toBe(MoveGateState.Idle);
    await settle();
    expect(move.done).toBe(false);
    expect(old.every((f) => allocator.isAllocated(f))).toBe(true);
    expect(heap.stats().retiring).toBe(1);
    imp.release();
    expect(await move.p).toMatchObject({ generation: 1, notified: 1 });
    expect(old.some((f) => allocator.isAllocated(f))).toBe(false);
    await buf.endCpuAccess('from_device');
    await buf.unpin();
    await buf.detach(att);
    await buf.put();
  });

  it('an importer that cannot prepare leaves the buffer where it was; the ones prepared are aborted', async () => {
    const free0 = allocator.freePages;
    const buf = heap.alloc(8 * 4096, { movable: true });
    const v = await buf.vmap();
    fill(v, 5);
    const first = heldNotify();
    const a1 = await buf.attach('ok', first.ops);
    const a2 = await buf.attach('full', { prepareMove: () => { throw Object.assign(new Error('grant table full'), { code: 'ERR_LIMIT' }); }, moveNotify: () => undefined });
    const frames = buf.priv.frames.slice();
    await expect(buf.move()).rejects.toMatchObject({ code: 'ERR_LIMIT' });
    expect(first.calls).toEqual(['prepare', 'abort']);
    expect(Array.from(buf.priv.frames)).toEqual(Array.from(frames));
    expect(buf.generation).toBe(0);
    expect(v.byteLength).toBe(8 * 4096);
    expect(bad(v, 5)).toBe(-1);
    expect(allocator.freePages).toBe(free0 - 8);
    expect(buf.gate.state).toBe(MoveGateState.Idle);
    await buf.detach(a1);
    await buf.detach(a2);
    await buf.vunmap(v);
    await buf.put();
  });
});

describe('what holds a move back', () => {
  it('a pin: wait false fails with ERR_PINNED, a waiting move starts at the unpin, a timeout gives ERR_TIMEOUT', async () => {
    const buf = heap.alloc(4 * 4096, { movable: true });
    await buf.pin();
    expect(buf.use().pins).toBe(1);
    await expect(buf.move({ wait: false })).rejects.toMatchObject({ code: 'ERR_PINNED' });
    await expect(buf.move({ timeoutMs: 20 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    const move = track(buf.move());
    await settle();
    expect(buf.gate.state).toBe(MoveGateState.MoveWaiting);
    expect(move.done).toBe(false);
    // A waiting move holds nothing back: CPU access goes ahead.
    await buf.beginCpuAccess('to_device');
    await buf.endCpuAccess('to_device');
    await buf.unpin();
    expect(await move.p).toMatchObject({ generation: 1, waitedFor: ['pinned'] });
    await buf.put();
  });

  it('a mapped static attachment pins; a dynamic one does not', async () => {
    const buf = heap.alloc(4 * 4096, { movable: true });
    const dev = await buf.attach('scanout');
    const sgt = await buf.map(dev);
    await expect(buf.move({ wait: false })).rejects.toMatchObject({ code: 'ERR_PINNED' });
    await buf.unmap(dev, sgt);
    const dyn = await buf.attach('gpu', { moveNotify: () => undefined });
    const dsgt = await buf.map(dyn);
    await buf.move({ wait: false });
    // The dynamic attachment's table now names the old frames: it maps again.
    expect(Array.from(dsgt.frames())).not.toEqual(Array.from(buf.priv.frames));
    await buf.unmap(dyn, dsgt);
    await buf.detach(dyn);
    await buf.detach(dev);
    await buf.put();
  });

  it('CPU access in progress: the move waits for end_cpu_access (ERR_BUSY if told not to wait)', async () => {
    const buf = heap.alloc(4 * 4096, { movable: true });
    await buf.beginCpuAccess('to_device');
    await expect(buf.move({ wait: false })).rejects.toMatchObject({ code: 'ERR_BUSY' });
    const move = track(buf.move());
    await settle();
    expect(move.done).toBe(false);
    await buf.endCpuAccess('to_device');
    expect(await move.p).toMatchObject({ waitedFor: ['cpu-access'] });
    await buf.put();
  });

  it('moves run one at a time; a last put during a move frees the new frames after it', async () => {
    const free0 = allocator.freePages;
    const buf = heap.alloc(8 * 4096, { movable: true });
    const imp = heldNotify();
    const att = await buf.attach('gpu', { moveNotify: () => ({ released: Promise.resolve() }) });
    const m1 = buf.move();
    const m2 = buf.move();
    const results = await Promise.all([m1, m2]);
    expect(results.map((r) => r.generation)).toEqual([1, 2]);
    await buf.detach(att);
    const att2 = await buf.attach('slow', imp.ops);
    const m3 = track(buf.move());
    await settle();
    await buf.detach(att2);
    await buf.put();
    // Still alive: the move holds its own reference.
    expect(buf.state).toBe('live');
    imp.ack();
    imp.release();
    await m3.p;
    expect(buf.state).toBe('released');
    expect(allocator.freePages).toBe(free0);
  });
});
