/**
 * The kernel's sync selftests (tools/testing/selftests/sync) and IGT's
 * sw_sync, ported across VM processes: timelines live in the owner VM (in
 * place of sw_sync timelines, which only their opener can advance), the
 * waiting, merging and FILE_INFO happen in other VMs on imported fences.
 * Plus the multi-producer single-consumer stress with four VMs and a
 * counter in shared memory. One backend and four VMs serve the file.
 *
 * Not ported: sync_busy_fork_unixsocket passes the timeline itself to
 * another process, which then advances it; across VMs only the owner can
 * signal its timeline (a peer sees it read-only), which is the point.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VmProcess } from '../../vm-sim/process/spawn/spawn-vm.ts';
import { type FenceRun, startFenceRun, stopFenceRun } from '../fence-remote/mp-harness.ts';

const ENOENT = -2;

let run: FenceRun | undefined;
let a: VmProcess; // owner of the timelines
let b: VmProcess; // waiter
let c: VmProcess; // second waiter
let d: VmProcess; // third VM for the stress
let nextCookie = 1;

beforeAll(async () => {
  run = await startFenceRun(['owner', 'waiter', 'waiter2', 'third']);
  [a, b, c, d] = run.vms as [VmProcess, VmProcess, VmProcess, VmProcess];
});

afterAll(async () => {
  await stopFenceRun(run);
});

interface Info { status: number; fileStatus: number; numFences: number; fences: Array<{ status: number }> }
interface Wait { ret: number; status: number; elapsedMs: number }

const tlCreate = async (name: string): Promise<number> => (await a.call<{ tl: number }>('fence.timeline.create', { name })).tl;
const tlDestroy = (tl: number): Promise<unknown> => a.call('fence.timeline.destroy', { tl });
const signal = (tl: number, seqno: number): Promise<unknown> => a.call('fence.signal', { tl, seqno });

/** Owner creates point `seqno` on `tl` and exports it to `to`, which imports it; returns `to`'s fence id. */
async function point(tl: number, seqno: number, to: VmProcess = b): Promise<number> {
  const cookie = nextCookie++;
  const f = await a.call<{ fence: number }>('fence.create', { tl, seqno });
  await a.call('fence.export', { peer: to.domid, fence: f.fence, cookie });
  return (await to.call<{ fence: number }>('fence.import', { src: a.domid, cookie })).fence;
}

const info = (fence: number, vm: VmProcess = b): Promise<Info> => vm.call<Info>('fence.info', { fence });
const wait = (fence: number, timeoutMs: number, vm: VmProcess = b): Promise<Wait> => vm.call<Wait>('fence.wait', { fence, timeoutMs });
const merge = async (fences: number[], vm: VmProcess = b): Promise<number> => (await vm.call<{ fence: number }>('fence.merge', { fences })).fence;
const active = (i: Info): number => i.fences.filter((f) => f.status === 0).length;
const signalled = (i: Info): number => i.fences.filter((f) => f.status === 1).length;

describe('sync selftests across VMs', () => {
  it('sync_alloc: timelines and fences are created; a fence on a timeline that does not exist is refused', async () => {
    const tl = await tlCreate('alloc');
    expect(await a.call('fence.create', { tl, seqno: 1 })).toMatchObject({ status: 0 });
    await expect(a.call('fence.create', { tl: 0xfffffff, seqno: 1 })).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
    await tlDestroy(tl);
  });

  it('sync_fence: one timeline wait (fence at 5 times out at 0 and 1, signals at 5, stays at 10)', async () => {
    const tl = await tlCreate('one-wait');
    const f = await point(tl, 5);
    expect(await wait(f, 0)).toMatchObject({ ret: 0 });
    await signal(tl, 1);
    expect(await wait(f, 0)).toMatchObject({ ret: 0 });
    await signal(tl, 5);
    expect((await wait(f, 2000)).ret).toBeGreaterThan(0);
    await signal(tl, 10);
    expect(await wait(f, 0)).toMatchObject({ ret: 1, status: 1 });
    await tlDestroy(tl);
  });

  it('sync_fence: one timeline merge (d = merge(c, merge(b, a)) keeps only the latest point)', async () => {
    const tl = await tlCreate('one-merge');
    const [fa, fb, fc] = [await point(tl, 1), await point(tl, 2), await point(tl, 3)];
    const fd = await merge([fc, await merge([fb, fa])]);
    for (const f of [fa, fb, fc, fd]) expect(active(await info(f))).toBe(1);
    await signal(tl, 1);
    await wait(fa, 2000);
    expect(signalled(await info(fa))).toBe(1);
    expect(active(await info(fd))).toBe(1);
    await signal(tl, 2);
    await wait(fb, 2000);
    expect(active(await info(fd))).toBe(1);
    await signal(tl, 3);
    await wait(fd, 2000);
    expect(await info(fd)).toMatchObject({ numFences: 1, status: 1 });
    expect(signalled(await info(fd))).toBe(1);
    await tlDestroy(tl);
  });

  it('sync_merge: merge of a fence with itself is one fence, signalled once the owner reaches it', async () => {
    const tl = await tlCreate('merge-same');
    const f = await point(tl, 5);
    const m = await merge([f, f]);
    expect(await info(m)).toMatchObject({ numFences: 1 });
    expect(signalled(await info(m))).toBe(0);
    await signal(tl, 5);
    await wait(m, 2000);
    expect(signalled(await info(m))).toBe(1);
    await tlDestroy(tl);
  });

  it('sync_wait: multi-timeline wait (3 timelines merged: 3, 2, 1, 0 active as each reaches 5)', async () => {
    const tls = [await tlCreate('mw-a'), await tlCreate('mw-b'), await tlCreate('mw-c')];
    const m = await merge([await point(tls[0]!, 5), await point(tls[1]!, 5), await point(tls[2]!, 5)]);
    let i = await info(m);
    expect([active(i), signalled(i)]).toEqual([3, 0]);
    expect(await wait(m, 0)).toMatchObject({ ret: 0 });
    for (let k = 0; k < 3; k++) {
      await signal(tls[k]!, 5);
      // The importer sees each advance through the page alone (no message): its VM answers once the leaf signalled.
      i = await b.call<Info>('wait.fence.leaves', { fence: m, signalled: k + 1, timeoutMs: 10_000 });
      expect([active(i), signalled(i)]).toEqual([2 - k, k + 1]);
    }
    expect((await wait(m, 100)).ret).toBeGreaterThan(0);
    await Promise.all(tls.map(tlDestroy));
  });

  it('sync_stress_merge: random merges of points of 8 timelines keep one fence per timeline, signalled only at the max points', async () => {
    const tls = await Promise.all(Array.from({ length: 8 }, (_, i) => tlCreate(`rm-${i}`)));
    const max = new Map<number, number>();
    let merged: number | undefined;
    let seed = 12345;
    const rand = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed % n; };
    for (let k = 0; k < 48; k++) {
      const t = rand(8);
      const s = 1 + rand(1000);
      max.set(t, Math.max(max.get(t) ?? 0, s));
      const f = await point(tls[t]!, s);
      merged = merged === undefined ? f : await merge([merged, f]);
    }
    expect((await info(merged!)).numFences).toBe(max.size);
    expect(await wait(merged!, 0)).toMatchObject({ ret: 0 });
    const used = [...max.entries()];
    for (const [t, s] of used.slice(0, -1)) await signal(tls[t]!, s);
    expect(await wait(merged!, 20)).toMatchObject({ ret: 0 });
    const [lt, ls] = used[used.length - 1]!;
    await signal(tls[lt]!, ls);
    expect((await wait(merged!, 2000)).ret).toBeGreaterThan(0);
    await Promise.all(tls.map(tlDestroy));
  });

  it('sync_stress_consumer: 3 producer VMs x 150 iterations, one consumer VM; the shared counter is n*it at every step', async () => {
    const producers = [a, c, d];
    const consumer = await b.call<{ stress: number; refs: Record<string, number> }>('fence.mpsc.setup', { role: 'consumer', producers: producers.map((p) => p.domid) });
    const ps = await Promise.all(producers.map((p) => p.call<{ stress: number }>('fence.mpsc.setup', { role: 'producer', consumer: b.domid, ref: consumer.refs[p.domid] })));
    const t0 = performance.now();
    const results = await Promise.all([
      b.call<Record<string, unknown>>('fence.mpsc.run', { stress: consumer.stress, iterations: 150 }, 60_000),
      ...producers.map((p, i) => p.call<Record<string, unknown>>('fence.mpsc.run', { stress: ps[i]!.stress, iterations: 150 }, 60_000)),
    ]);
    const ms = performance.now() - t0;
    expect(results[0]).toMatchObject({ role: 'consumer', iterations: 150, mismatches: 0, counter: 450 });
    for (const r of results) expect(r.error).toBeUndefined();
    console.log(`MPSC stress: 3 producers x 150 iterations in ${ms.toFixed(0)} ms`);
    await Promise.all(producers.map((p, i) => p.call('fence.mpsc.close', { stress: ps[i]!.stress })));
    await b.call('fence.mpsc.close', { stress: consumer.stress });
  });
});

describe('IGT sw_sync across VMs', () => {
  it('timeline_closed and timeline_closed_signaled: destroying the owner\'s timeline signals pending imports with -ENOENT, and leaves signalled ones alone', async () => {
    const tl = await tlCreate('closed');
    const done = await point(tl, 1);
    const pending = await point(tl, 2);
    await signal(tl, 1);
    await wait(done, 2000);
    await tlDestroy(tl);
    expect(await wait(pending, 0)).toMatchObject({ ret: 1, status: ENOENT });
    expect(await wait(done, 0)).toMatchObject({ ret: 1, status: 1 });
  });

  it('sync_busy: busy at 0 and 1, signalled at 5 and after; then prime steps', async () => {
    const tl = await tlCreate('busy');
    const f = await point(tl, 5);
    expect(await wait(f, 0)).toMatchObject({ ret: 0 });
    await signal(tl, 1);
    expect(await wait(f, 0)).toMatchObject({ ret: 0 });
    await signal(tl, 5);
    expect((await wait(f, 2000)).ret).toBeGreaterThan(0);
    let value = 5;
    for (const p of [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97]) {
      const g = await point(tl, value + p);
      expect(await wait(g, 0)).toMatchObject({ ret: 0 });
      value += p;
      await signal(tl, value);
      expect((await wait(g, 2000)).status).toBe(1);
    }
    await tlDestroy(tl);
  });

  it('sync_multi_consumer: two VMs wait on every point of one producer timeline; slots are shared and freed', async () => {
    const tl = await tlCreate('multi-consumer');
    for (let s = 1; s <= 20; s++) {
      const [fb, fc] = [await point(tl, s, b), await point(tl, s, c)];
      const waits = [wait(fb, 5000, b), wait(fc, 5000, c)];
      await signal(tl, s);
      for (const w of await Promise.all(waits)) expect(w.status).toBe(1);
    }
    const stats = await a.call<{ owner: { slotsUsed: number; shares: { mapped: number } } }>('fence.stats');
    expect(stats.owner.shares.mapped).toBeGreaterThanOrEqual(2);
    await tlDestroy(tl);
  });

  it('sync_expired_merge: merging an already signalled import with itself always yields a signalled fence', async () => {
    const tl = await tlCreate('expired');
    await signal(tl, 100);
    const f = await point(tl, 1);
    for (let k = 0; k < 20; k++) {
      const m = await merge([f, f]);
      expect(await wait(m, 0)).toMatchObject({ ret: 1, status: 1 });
    }
    await tlDestroy(tl);
  });

  it('sync_merge_invalid: merging with a fence id that does not exist is refused', async () => {
    await expect(b.call('fence.merge', { fences: [999_999] })).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
  });
});
