/**
 * Ports of Linux's st-dma-fence and st-dma-fence-chain with the fence in
 * one VM process (the owner of its timelines) and the waiter in another:
 * the waiter's fences are RemoteFences whose state it reads from the
 * owner's timeline page, woken by event channel. One backend and two VMs
 * serve every check of the file; afterAll checks that both hold nothing and
 * that every process and shm file is gone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VmProcess } from '../../vm-sim/process/spawn/spawn-vm.ts';
import { type FenceRun, startFenceRun, stopFenceRun } from '../fence-remote/mp-harness.ts';

const EIO = -5;
const ENOENT = -2;
const EINVAL = -22;

let run: FenceRun | undefined;
let owner: VmProcess;
let waiter: VmProcess;
let cookie = 1;

beforeAll(async () => {
  run = await startFenceRun(['owner', 'waiter']);
  [owner, waiter] = run.vms as [VmProcess, VmProcess];
});

afterAll(async () => {
  await stopFenceRun(run);
});

interface Wait { ret: number; status: number; elapsedMs: number }

async function timeline(name: string): Promise<number> {
  return (await owner.call<{ tl: number }>('fence.timeline.create', { name })).tl;
}

/** The owner creates point `seqno` on `tl` and exports it; the waiter imports it. Returns the waiter's fence id. */
async function exportPoint(tl: number, seqno: number): Promise<number> {
  const c = cookie++;
  const f = await owner.call<{ fence: number }>('fence.create', { tl, seqno });
  await owner.call('fence.export', { peer: waiter.domid, fence: f.fence, cookie: c });
  return (await waiter.call<{ fence: number }>('fence.import', { src: owner.domid, cookie: c })).fence;
}

async function status(fence: number): Promise<number> {
  return (await waiter.call<{ statuses: number[] }>('fence.status', { fence })).statuses[0]!;
}

function signal(tl: number, seqno: number, error?: number): Promise<{ signalled: number }> {
  return owner.call('fence.signal', { tl, seqno, ...(error ? { error } : {}) });
}

function wait(fence: number, timeoutMs: number): Promise<Wait> {
  return waiter.call<Wait>('fence.wait', { fence, timeoutMs });
}

describe('st-dma-fence across VMs (fence in the owner VM, waiter in another)', () => {
  it('sanitycheck, signaling, status: pending until the owner signals, once; a second signal does nothing', async () => {
    const tl = await timeline('st-fence');
    const f = await exportPoint(tl, 1);
    expect(await status(f)).toBe(0);
    expect(await signal(tl, 1)).toMatchObject({ signalled: 1 });
    expect(await wait(f, 5000)).toMatchObject({ status: 1 });
    expect(await status(f)).toBe(1);
    expect(await signal(tl, 1)).toMatchObject({ signalled: 0 });
    await waiter.call('fence.put', { fence: f });
    await owner.call('fence.timeline.destroy', { tl });
  });

  it('add_callback, late_add_callback, rm_callback, late_rm_callback', async () => {
    const tl = await timeline('st-cb');
    const f = await exportPoint(tl, 1);
    const added = await waiter.call<{ cb: number; ret: number }>('fence.cb.add', { fence: f });
    const removedEarly = await waiter.call<{ cb: number; ret: number }>('fence.cb.add', { fence: f });
    const lateRm = await waiter.call<{ cb: number; ret: number }>('fence.cb.add', { fence: f });
    expect([added.ret, removedEarly.ret, lateRm.ret]).toEqual([0, 0, 0]);
    expect(await waiter.call('fence.cb.remove', { cb: removedEarly.cb })).toEqual({ removed: true, ran: 0 });
    await signal(tl, 1);
    await wait(f, 5000);
    // add_callback: ran, once. rm_callback: never ran. late_rm_callback: removing after it ran says false.
    expect(await waiter.call('fence.cb.state', { cb: added.cb })).toEqual({ ran: 1 });
    expect(await waiter.call('fence.cb.state', { cb: removedEarly.cb })).toEqual({ ran: 0 });
    expect(await waiter.call('fence.cb.remove', { cb: lateRm.cb })).toEqual({ removed: false, ran: 1 });
    // late_add_callback: -ENOENT, and it never runs.
    const late = await waiter.call<{ cb: number; ret: number }>('fence.cb.add', { fence: f });
    expect(late.ret).toBe(ENOENT);
    await signal(tl, 2);
    expect(await waiter.call('fence.cb.state', { cb: late.cb })).toEqual({ ran: 0 });
    await owner.call('fence.timeline.destroy', { tl });
  });

  it('error: the owner\'s error travels with the signal, and is invisible before it', async () => {
    const tl = await timeline('st-error');
    const f = await exportPoint(tl, 1);
    expect(await status(f)).toBe(0);
    await signal(tl, 1, 5);
    expect(await wait(f, 5000)).toMatchObject({ status: EIO });
    expect(await waiter.call('fence.info', { fence: f })).toMatchObject({ status: EIO, numFences: 1, fences: [{ status: EIO, driverName: 'hdmabuf-remote', objName: `st-error@d${owner.domid}` }] });
    await owner.call('fence.timeline.destroy', { tl });
  });

  it('wait and wait_timeout: 0 while pending, 1 for timeout 0 once signalled, remaining time when woken', async () => {
    const tl = await timeline('st-wait');
    const f = await exportPoint(tl, 1);
    expect(await wait(f, 0)).toMatchObject({ ret: 0, status: 0 });
    const timedOut = await wait(f, 30);
    expect(timedOut).toMatchObject({ ret: 0, status: 0 });
    expect(timedOut.elapsedMs).toBeGreaterThanOrEqual(25);
    let wokenEarly = false;
    const woken = wait(f, 5000);
    void woken.then(() => { wokenEarly = true; }, () => undefined);
    // The waiter's state is what matters: an unsignalled fence cannot wake it, however long it waits.
    expect(await wait(f, 0)).toMatchObject({ ret: 0, status: 0 });
    expect(wokenEarly).toBe(false);
    await signal(tl, 1);
    const w = await woken;
    expect(w.ret).toBeGreaterThan(0);
    expect(w.ret).toBeLessThan(5000);
    expect(w.elapsedMs).toBeLessThan(2000);
    expect(await wait(f, 0)).toMatchObject({ ret: 1, status: 1 });
    await owner.call('fence.timeline.destroy', { tl });
  });

  it('a fence exported already signalled (stub-like) arrives signalled, with its status', async () => {
    const tl = await timeline('st-stub');
    await signal(tl, 3);
    const ok = await exportPoint(tl, 2);
    expect(await wait(ok, 0)).toMatchObject({ ret: 1, status: 1 });
    await owner.call('fence.timeline.destroy', { tl });
  });

  it('race_signal_callback: callbacks added while the owner signals are either refused (-ENOENT) or run, never lost', async () => {
    const tl = await timeline('st-race');
    const N = 150;
    const c0 = cookie;
    cookie += N;
    await owner.call('fence.exportPoints', { peer: waiter.domid, tl, seqnos: Array.from({ length: N }, (_, i) => i + 1), cookieBase: c0 });
    const fences = await Promise.all(Array.from({ length: N }, (_, i) => waiter.call<{ fence: number }>('fence.import', { src: owner.domid, cookie: c0 + i }).then((r) => r.fence)));
    const signals = Promise.all(Array.from({ length: N }, (_, i) => signal(tl, i + 1)));
    const cbs = await Promise.all(fences.map((fence) => waiter.call<{ cb: number; ret: number }>('fence.cb.add', { fence })));
    await signals;
    await wait(fences[N - 1]!, 5000);
    const states = await Promise.all(cbs.map((c) => waiter.call<{ ran: number }>('fence.cb.state', { cb: c.cb })));
    let missed = 0;
    cbs.forEach((c, i) => {
      if (c.ret === ENOENT) { missed++; expect(states[i]!.ran).toBe(0); } else { expect(c.ret).toBe(0); expect(states[i]!.ran).toBe(1); }
    });
    expect(missed).toBeLessThanOrEqual(N);
    await owner.call('fence.timeline.destroy', { tl });
  });
});

describe('st-dma-fence-chain across VMs (chain built in the waiter VM over the owner\'s fences)', () => {
  /** n points of one timeline, or one point each on n timelines (to signal them in any order). */
  async function fences(n: number, separate: boolean): Promise<{ tls: number[]; ids: number[] }> {
    const tls = separate ? await Promise.all(Array.from({ length: n }, (_, i) => timeline(`chain-${i}`))) : [await timeline('chain')];
    const ids: number[] = [];
    for (let i = 0; i < n; i++) ids.push(await exportPoint(separate ? tls[i]! : tls[0]!, separate ? 1 : i + 1));
    return { tls, ids };
  }

  async function chain(ids: number[], seqnos?: number[]): Promise<number[]> {
    return (await waiter.call<{ chains: number[] }>('fence.chain', { fences: ids, ...(seqnos ? { seqnos } : {}) })).chains;
  }

  function find(fence: number, seqno: number): Promise<{ ret: number; found: number | null }> {
    return waiter.call('fence.chainFind', { fence, seqno });
  }

  async function destroyAll(tls: number[]): Promise<void> {
    await Promise.all(tls.map((tl) => owner.call('fence.timeline.destroy', { tl })));
  }

  it('find_seqno and find_gap over 64 imported points', async () => {
    const { tls, ids } = await fences(64, false);
    const chains = await chain(ids);
    const tail = chains[63]!;
    expect(await find(tail, 0)).toEqual({ ret: 0, found: tail });
    for (let i = 0; i < 64; i++) {
      expect(await find(tail, i + 1)).toEqual({ ret: 0, found: chains[i] });
      expect(await find(chains[i]!, i + 1)).toEqual({ ret: 0, found: chains[i] });
      if (i + 2 <= 64) expect((await find(chains[i]!, i + 2)).ret).toBe(EINVAL);
      if (i > 0) expect(await find(chains[i]!, i)).toEqual({ ret: 0, found: chains[i - 1] });
    }
    const gaps = await chain(ids, Array.from({ length: 64 }, (_, i) => 2 * i + 2));
    for (let i = 0; i < 64; i++) {
      expect(await find(gaps[63]!, 2 * i + 1)).toEqual({ ret: 0, found: gaps[i] });
      expect(await find(gaps[i]!, 2 * i + 2)).toEqual({ ret: 0, found: gaps[i] });
    }
    await destroyAll(tls);
  });

  it('find_signaled and find_out_of_order', async () => {
    const a = await fences(2, true);
    const [c0, c1] = await chain(a.ids);
    await owner.call('fence.signal', { tl: a.tls[0]!, seqno: 1 });
    await wait(a.ids[0]!, 5000);
    const r = await find(c1!, 1);
    expect(r.ret).toBe(0);
    expect([null, c0]).toContain(r.found);

    const b = await fences(3, true);
    const chains = await chain(b.ids);
    await owner.call('fence.signal', { tl: b.tls[1]!, seqno: 1 });
    await wait(b.ids[1]!, 5000);
    expect(await find(chains[2]!, 2)).toEqual({ ret: 0, found: chains[0] });
    await destroyAll([...a.tls, ...b.tls]);
  });

  it('signal_forward and signal_backward over 16 points on 16 timelines', async () => {
    const fwd = await fences(16, true);
    const fc = await chain(fwd.ids);
    for (let i = 0; i < 16; i++) {
      await owner.call('fence.signal', { tl: fwd.tls[i]!, seqno: 1 });
      await wait(fwd.ids[i]!, 5000);
      const s = (await waiter.call<{ statuses: number[] }>('fence.status', { fences: fc })).statuses;
      expect(s[i]).toBe(1);
      if (i + 1 < 16) expect(s[i + 1]).toBe(0);
    }
    const bwd = await fences(16, true);
    const bc = await chain(bwd.ids);
    for (let i = 15; i > 0; i--) {
      await owner.call('fence.signal', { tl: bwd.tls[i]!, seqno: 1 });
      await wait(bwd.ids[i]!, 5000);
      expect(await status(bc[i]!)).toBe(0);
    }
    await owner.call('fence.signal', { tl: bwd.tls[0]!, seqno: 1 });
    await wait(bc[15]!, 5000);
    expect((await waiter.call<{ statuses: number[] }>('fence.status', { fences: bc })).statuses).toEqual(new Array(16).fill(1));
    await destroyAll([...fwd.tls, ...bwd.tls]);
  });

  it('wait_forward, wait_backward, wait_random: a waiter on the tail wakes once the owner signalled everything', async () => {
    for (const order of ['forward', 'backward', 'random'] as const) {
      const { tls, ids } = await fences(16, true);
      const chains = await chain(ids);
      const waiting = wait(chains[15]!, 10_000);
      const idx = Array.from({ length: 16 }, (_, i) => i);
      if (order === 'backward') idx.reverse();
      if (order === 'random') idx.sort(() => Math.random() - 0.5);
      for (const i of idx) await owner.call('fence.signal', { tl: tls[i]!, seqno: 1 });
      const w = await waiting;
      expect(w.ret, order).toBeGreaterThan(0);
      expect(w.status, order).toBe(1);
      await destroyAll(tls);
    }
  });
});
