/**
 * The NEW_IMPORT event queue: blocking and non-blocking reads, the overflow
 * rule (oldest dropped, the reader told how many), private data copied.
 */
import { describe, expect, it } from 'vitest';
import { ImportEventQueue, type NewImportEvent } from '../../src/hyper-dmabuf/event-queue.ts';
import { HidAllocator } from '../../src/hyper-dmabuf/hid.ts';
import { codeOf, expectClean, startWorld } from './world.ts';

const ids = new HidAllocator(1);
const ev = (n: number): NewImportEvent => ({
  type: 'new_import', hid: ids.allocate(), exporter: 1, size: n, nents: 1, access: 'ro', update: false, priv: new Uint8Array(0), droppedBefore: 0,
});

describe('ImportEventQueue', () => {
  it('reads without blocking (undefined when empty) and in order', () => {
    const q = new ImportEventQueue(4);
    expect(q.tryRead()).toBeUndefined();
    q.push(ev(1));
    q.push(ev(2));
    expect(q.tryRead()?.size).toBe(1);
    expect(q.tryRead()?.size).toBe(2);
    expect(q.tryRead()).toBeUndefined();
  });

  it('blocks until an event arrives, first reader first', async () => {
    const q = new ImportEventQueue(4);
    const r1 = q.read();
    const r2 = q.read();
    q.push(ev(1));
    q.push(ev(2));
    expect((await r1).size).toBe(1);
    expect((await r2).size).toBe(2);
    expect(q.length).toBe(0);
  });

  it('drops the oldest on overflow and tells the next reader how many it missed', () => {
    const q = new ImportEventQueue(3);
    for (let i = 1; i <= 5; i++) q.push(ev(i));
    expect(q.dropped).toBe(2);
    const first = q.tryRead()!;
    expect(first.size).toBe(3);
    expect(first.droppedBefore).toBe(2);
    expect(q.tryRead()?.droppedBefore).toBe(0);
  });

  it('times out, aborts, and fails blocked readers on close', async () => {
    const q = new ImportEventQueue(3);
    expect(await codeOf(q.read({ timeoutMs: 5 }))).toBe('ERR_TIMEOUT');
    const ac = new AbortController();
    const aborted = q.read({ signal: ac.signal });
    ac.abort();
    expect(await codeOf(aborted)).toBe('ERR_CLOSED');
    const blocked = q.read();
    q.close();
    expect(await codeOf(blocked)).toBe('ERR_CLOSED');
    q.push(ev(1));
    expect(q.tryRead()).toBeUndefined();
  });
});

describe('NEW_IMPORT events from the driver', () => {
  it('wake a blocked reader with a copy of the private data', async () => {
    const w = await startWorld(2);
    const [a, b] = w.doms as [typeof w.doms[0], typeof w.doms[0]];
    const next = b.driver.readEvent({ timeoutMs: 10_000 });
    const buf = a.driver.heap.alloc(100);
    const priv = Uint8Array.from([4, 5, 6]);
    const hid = await a.driver.exportRemote(buf, b.domid, { priv });
    const got = await next;
    expect(got).toMatchObject({ exporter: a.domid, size: 100, update: false });
    expect(got.hid).toEqual(hid);
    // A later update does not change the event already read.
    await a.driver.exportRemote(buf, b.domid, { priv: Uint8Array.from([9]) });
    expect(Array.from(got.priv)).toEqual([4, 5, 6]);
    expect(Array.from(b.driver.tryReadEvent()!.priv)).toEqual([9]);
    await a.driver.unexport(hid);
    await a.driver.waitReleased(hid);
    await buf.put();
    expectClean(w);
  });
});
