/**
 * Unit tests of the guest grant table over an in-memory table, with a fake
 * backend that grows it and sets busy bits as a mapping would.
 */
import { describe, expect, it } from 'vitest';
import { ENTRIES_PER_FRAME, GTF } from '../../protocol/grant-abi.ts';
import { PAGE_SIZE } from '../../protocol/limits.ts';
import { GrantTableView } from '../../src/memory/grant-table-view.ts';
import { revokeAndFree } from '../../src/guest/grant-release.ts';
import type { GrantTableMemory } from '../../src/guest/grant-table-file.ts';
import { GuestGrantTable, RefState } from '../../src/guest/grant-table.ts';
import { PageAllocator } from '../../src/guest/page-allocator.ts';

/** A table memory holding maxFrames frames from the start (as the backend creates the file). */
function memory(maxFrames: number): GrantTableMemory & { grows: number[] } {
  const view = new GrantTableView(new ArrayBuffer(maxFrames * ENTRIES_PER_FRAME * 8));
  const grows: number[] = [];
  return { view, grows, grow: (n) => { grows.push(n); }, close: () => undefined };
}

interface Setup { table: GuestGrantTable; view: GrantTableView; setupCalls: number[] }

function setup(nrFrames: number, maxFrames: number, opts: { refuse?: boolean; minDelayMs?: number } = {}): Setup {
  const mem = memory(maxFrames);
  const setupCalls: number[] = [];
  const table = new GuestGrantTable({
    memory: mem,
    hypercalls: {
      setupTable: async (n) => {
        setupCalls.push(n);
        if (opts.refuse) throw Object.assign(new Error('over the limit'), { code: 'ERR_LIMIT' });
        return { nrFrames: n, maxFrames };
      },
    },
    nrFrames, maxFrames, memPages: 1 << 20,
    retry: { minDelayMs: opts.minDelayMs ?? 60_000, maxDelayMs: 60_000 },
  });
  return { table, view: mem.view, setupCalls };
}

/** What the backend does when it maps an entry: set GTF_reading (and GTF_writing) atomically. */
function markMapped(view: GrantTableView, ref: number, writing = false): void {
  for (;;) {
    const { header } = view.loadHeader(ref);
    if (view.casHeader(ref, header, header | GTF.reading | (writing ? GTF.writing : 0))) return;
  }
}
const markUnmapped = (view: GrantTableView, ref: number): void => view.clearFlags(ref, GTF.reading | GTF.writing);

describe('GuestGrantTable', () => {
  it('never hands out ref 0, and publishes entries in the v1 layout', async () => {
    const { table, view } = setup(1, 4);
    const refs = await table.grantAccessMany(7, [100, 101, 102], true);
    expect([...refs]).toEqual([1, 2, 3]);
    const rw = await table.grantAccess(9, 55, false);
    expect(rw).toBe(4);
    expect(view.loadHeader(1)).toMatchObject({ domid: 7, flags: GTF.permit_access | GTF.readonly });
    expect(view.loadFrame(2)).toBe(101);
    expect(view.loadHeader(4)).toMatchObject({ domid: 9, flags: GTF.permit_access });
    expect(table.stateOf(0)).toBe(RefState.Reserved);
    expect(() => table.endAccess(0)).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }));
  });

  it('grows with one GNTTAB_SETUP_TABLE round trip when full', async () => {
    const { table, setupCalls } = setup(1, 8);
    const refs = await table.grantAccessMany(3, new Uint32Array(1500).fill(42), false);
    expect(setupCalls).toEqual([3]); // ceil((1 reserved + 1500) / 512)
    expect(new Set(refs).size).toBe(1500);
    expect(refs).not.toContain(0);
    await table.grantAccessMany(3, new Uint32Array(35).fill(42), false);
    expect(setupCalls).toEqual([3]); // 3 frames hold 1535 refs: no growth
    expect(table.stats()).toMatchObject({ nrFrames: 3, granted: 1535, free: 0, growths: 1 });
  });

  it('fails with ERR_LIMIT at the maximum, granting nothing', async () => {
    const { table, setupCalls } = setup(1, 2);
    await table.grantAccessMany(3, new Uint32Array(1000).fill(1), false);
    const before = table.stats();
    await expect(table.grantAccessMany(3, new Uint32Array(24).fill(1), false)).rejects.toMatchObject({ code: 'ERR_LIMIT' });
    expect(table.stats()).toEqual(before);
    expect(setupCalls).toEqual([2]);
    // Exactly the rest fits: 2 frames * 512 - 1 reserved - 1000.
    expect((await table.grantAccessMany(3, new Uint32Array(23).fill(1), false)).length).toBe(23);
  });

  it('maps a refusal of the backend to ERR_LIMIT', async () => {
    const { table } = setup(1, 4, { refuse: true });
    await expect(table.grantAccessMany(3, new Uint32Array(600).fill(1), false)).rejects.toMatchObject({ code: 'ERR_LIMIT' });
  });

  it('concurrent grants that need growth get distinct refs', async () => {
    const { table } = setup(1, 16);
    const batches = await Promise.all([1, 2, 3, 4].map((d) => table.grantAccessMany(d, new Uint32Array(700).fill(d), false)));
    const all = batches.flatMap((b) => [...b]);
    expect(new Set(all).size).toBe(2800);
  });

  it('rejects frames outside RAM and bad domids', async () => {
    const { table } = setup(1, 1);
    await expect(table.grantAccess(3, 1 << 20, false)).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
    await expect(table.grantAccess(-1, 5, false)).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
  });

  it('ending access while mapped reports busy and keeps the ref; after unmap it ends and the ref is reused', async () => {
    const { table, view } = setup(1, 1);
    const ref = await table.grantAccess(2, 10, false);
    markMapped(view, ref, true);
    expect(table.isBusy(ref)).toBe(true);
    expect(table.endAccess(ref)).toBe('busy');
    expect(table.stateOf(ref)).toBe(RefState.Granted);
    // A busy ref is never handed out again.
    const other = await table.grantAccess(2, 11, false);
    expect(other).not.toBe(ref);
    markUnmapped(view, ref);
    expect(table.endAccess(ref)).toBe('ended');
    expect(view.loadHeader(ref).flags).toBe(0);
    expect(table.stateOf(ref)).toBe(RefState.Free);
    expect(await table.grantAccess(2, 12, false)).toBe(ref);
    expect(() => table.endAccess(ref + 100)).toThrow(/not granted/);
  });

  it('deferred release retries on demand and runs the callback only once access ended', async () => {
    const { table, view } = setup(1, 1);
    const [a, b] = await table.grantAccessMany(2, [20, 21], true);
    markMapped(view, b!);
    const ended: number[] = [];
    expect(table.endAccessDeferred(a!, () => ended.push(a!))).toBe('ended');
    expect(table.endAccessDeferred(b!, () => ended.push(b!))).toBe('deferred');
    expect(ended).toEqual([a]);
    expect(table.pendingDeferred).toBe(1);
    expect(table.stateOf(b!)).toBe(RefState.Deferred);
    expect(table.endAccess(b!)).toBe('busy');
    expect(table.retryDeferred()).toBe(0);
    markUnmapped(view, b!);
    expect(table.retryDeferred()).toBe(1);
    expect(ended).toEqual([a, b]);
    expect(table.pendingDeferred).toBe(0);
    expect(table.stats()).toMatchObject({ granted: 0, deferred: 0, deferredEnded: 1 });
  });

  it('deferred release retries on its own timer', async () => {
    const { table, view } = setup(1, 1, { minDelayMs: 1 });
    const ref = await table.grantAccess(2, 20, false);
    markMapped(view, ref);
    const done = new Promise<void>((resolve) => table.endAccessDeferred(ref, resolve));
    markUnmapped(view, ref);
    await done; // resolved by a timer retry: nothing else calls retryDeferred
    expect(table.stats().deferredPasses).toBeGreaterThanOrEqual(1);
    table.close();
  });

  it('revokeAndFree frees and scrubs the frames only once every ref ended', async () => {
    const ram = new Uint8Array(64 * PAGE_SIZE);
    const alloc = new PageAllocator(64, { scrub: (f, n) => ram.fill(0, f * PAGE_SIZE, (f + n) * PAGE_SIZE) });
    const frames = alloc.alloc(4);
    for (const f of frames) ram.fill(0xee, f * PAGE_SIZE, (f + 1) * PAGE_SIZE);
    const { table, view } = setup(1, 1);
    const refs = await table.grantAccessMany(5, frames, true);
    markMapped(view, refs[1]!);
    markMapped(view, refs[3]!);
    const release = revokeAndFree(table, refs, alloc, frames);
    expect(release.pending).toBe(2);
    expect(release.state).toBe('pending');
    markUnmapped(view, refs[1]!);
    table.retryDeferred();
    expect(release.pending).toBe(1);
    // Still pending: pages neither freed nor scrubbed while the peer may read them.
    expect(frames.every((f) => alloc.isAllocated(f))).toBe(true);
    expect(ram[frames[3]! * PAGE_SIZE]).toBe(0xee);
    markUnmapped(view, refs[3]!);
    table.retryDeferred();
    await release.done;
    expect(release.state).toBe('released');
    expect(frames.some((f) => alloc.isAllocated(f))).toBe(false);
    expect(ram[frames[3]! * PAGE_SIZE]).toBe(0);
    expect(() => revokeAndFree(table, refs, alloc, frames)).toThrow(/not granted/);
  });

  it('revokeAndFree refuses a ref listed twice, anywhere in the list, and changes nothing', async () => {
    const { table } = setup(1, 1);
    const refs = await table.grantAccessMany(5, [10, 11, 12, 13], true);
    for (const twice of [[refs[0]!, refs[1]!, refs[0]!], [refs[2]!, refs[3]!, refs[1]!, refs[3]!]]) {
      expect(() => revokeAndFree(table, twice)).toThrow(/listed twice/);
    }
    expect(Array.from(refs, (r) => table.stateOf(r))).toEqual([RefState.Granted, RefState.Granted, RefState.Granted, RefState.Granted]);
    await revokeAndFree(table, refs).done;
    table.close();
  });
});
