/**
 * IGT's dmabuf_sync_file cases that mean something across VMs, and the
 * sync_file bridge's cross-VM transport: fences made in one VM ("gpu")
 * are imported into a reservation object in another ("buffer") with
 * DMA_BUF_IOCTL_IMPORT_SYNC_FILE semantics, busy-ness is read with poll()
 * and with exported sync_files, and a sync_file exported from that
 * reservation object travels on to a third VM ("display"), whose wait
 * completes when the first VM signals, errors included.
 *
 * The reservation object is a local one, not a shared buffer's
 * (test/multiprocess/dmabuf-sync.test.ts covers those). The last case kills the
 * "gpu" VM: the error reaches the third VM through the bridge.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VmProcess } from '../../vm-sim/process/spawn/spawn-vm.ts';
import { type FenceRun, startFenceRun, stopFenceRun } from '../fence-remote/mp-harness.ts';

const EIO = -5;
const EPIPE = -32;

let run: FenceRun | undefined;
let gpu: VmProcess;
let buffer: VmProcess;
let display: VmProcess;
let nextCookie = 1;

beforeAll(async () => {
  run = await startFenceRun(['gpu', 'buffer', 'display']);
  [gpu, buffer, display] = run.vms as [VmProcess, VmProcess, VmProcess];
});

afterAll(async () => {
  await stopFenceRun(run);
});

type Busy = Record<'read' | 'write' | 'rw', { poll: boolean; export: boolean }>;
interface Wait { ret: number; status: number; elapsedMs: number }

const tlCreate = async (name: string): Promise<number> => (await gpu.call<{ tl: number }>('fence.timeline.create', { name })).tl;
const signal = (tl: number, seqno: number, error?: number): Promise<unknown> => gpu.call('fence.signal', { tl, seqno, ...(error ? { error } : {}) });

/** The gpu VM makes point `seqno` on `tl` and sends it to the buffer VM; returns the buffer VM's fence id. */
async function gpuFence(tl: number, seqno: number): Promise<number> {
  const cookie = nextCookie++;
  const f = await gpu.call<{ fence: number }>('fence.create', { tl, seqno });
  await gpu.call('fence.export', { peer: buffer.domid, fence: f.fence, cookie });
  return (await buffer.call<{ fence: number }>('fence.import', { src: gpu.domid, cookie })).fence;
}

const newResv = async (): Promise<number> => (await buffer.call<{ resv: number }>('fence.resv.create')).resv;
const importInto = (resv: number, fence: number, access: string): Promise<unknown> => buffer.call('fence.resv.import', { resv, fence, access });
const busy = (resv: number): Promise<Busy> => buffer.call<Busy>('fence.resv.busy', { resv });

/**
 * The buffer VM's view of `resv` once it matches: the VM answers when it does (an import makes it busy when it is
 * answered; a signal of the gpu VM arrives by page and event, not with the IPC answer), ERR_TIMEOUT after 10 s.
 */
async function busyBecomes(resv: number, want: Partial<Record<'read' | 'write' | 'rw', boolean>>): Promise<void> {
  const b = await buffer.call<Busy>('wait.resv.busy', { resv, want, timeoutMs: 10_000 });
  expect(Object.entries(want).every(([k, v]) => b[k as 'read'].poll === v && b[k as 'read'].export === v), JSON.stringify(b)).toBe(true);
}

const ALL = (v: boolean) => ({ read: v, write: v, rw: v });

describe('IGT dmabuf_sync_file across VMs (fences of one VM in another VM\'s reservation object)', () => {
  it('import-basic: a READ import blocks writers only, WRITE and RW imports block everyone, until the gpu VM signals', async () => {
    const tl = await tlCreate('import-basic');
    const resv = await newResv();
    expect(await busy(resv)).toEqual({ read: { poll: false, export: false }, write: { poll: false, export: false }, rw: { poll: false, export: false } });
    await importInto(resv, await gpuFence(tl, 1), 'read');
    await busyBecomes(resv, { read: false, write: true, rw: true });
    await signal(tl, 1);
    await busyBecomes(resv, ALL(false));
    await importInto(resv, await gpuFence(tl, 2), 'write');
    await busyBecomes(resv, ALL(true));
    await signal(tl, 2);
    await busyBecomes(resv, ALL(false));
    await importInto(resv, await gpuFence(tl, 3), 'rw');
    await busyBecomes(resv, ALL(true));
    await signal(tl, 3);
    await busyBecomes(resv, ALL(false));
    await gpu.call('fence.timeline.destroy', { tl });
  });

  it('import-multiple-read-only and import-multiple-read-write: 32 remote READ fences accumulate; a remote WRITE fence blocks readers', async () => {
    const tls = await Promise.all(Array.from({ length: 32 }, (_, i) => tlCreate(`ro-${i}`)));
    const wtl = await tlCreate('rw-writer');
    const resv = await newResv();
    for (const tl of tls) await importInto(resv, await gpuFence(tl, 1), 'read');
    expect(await buffer.call('fence.resv.count', { resv, usage: 'read' })).toEqual({ count: 32 });
    const readSnap = (await buffer.call<{ fence: number }>('fence.resv.export', { resv, access: 'read' })).fence;
    const writeSnap = (await buffer.call<{ fence: number }>('fence.resv.export', { resv, access: 'write' })).fence;
    await importInto(resv, await gpuFence(wtl, 1), 'write');
    for (let i = 31; i >= 0; i--) {
      await busyBecomes(resv, { read: true, write: true });
      expect((await buffer.call<Wait>('fence.wait', { fence: readSnap, timeoutMs: 0 })).ret).toBe(1);
      expect((await buffer.call<Wait>('fence.wait', { fence: writeSnap, timeoutMs: 0 })).ret).toBe(0);
      await signal(tls[i]!, 1);
    }
    expect((await buffer.call<Wait>('fence.wait', { fence: writeSnap, timeoutMs: 3000 })).status).toBe(1);
    await busyBecomes(resv, { read: true, write: true }); // the remote writer is still pending
    await signal(wtl, 1);
    await busyBecomes(resv, ALL(false));
    await Promise.all([...tls, wtl].map((tl) => gpu.call('fence.timeline.destroy', { tl })));
  });

  it('export-multiwait: a WRITE export is a snapshot; it goes idle when the fences it holds signal, though a later one is pending', async () => {
    const tl1 = await tlCreate('mw-1');
    const tl2 = await tlCreate('mw-2');
    const tl3 = await tlCreate('mw-3');
    const resv = await newResv();
    await importInto(resv, await gpuFence(tl1, 1), 'read');
    await importInto(resv, await gpuFence(tl2, 1), 'read');
    const snap = (await buffer.call<{ fence: number }>('fence.resv.export', { resv, access: 'write' })).fence;
    await importInto(resv, await gpuFence(tl3, 1), 'read');
    await signal(tl1, 1);
    expect((await buffer.call<Wait>('fence.wait', { fence: snap, timeoutMs: 30 })).ret).toBe(0);
    await signal(tl2, 1);
    expect((await buffer.call<Wait>('fence.wait', { fence: snap, timeoutMs: 3000 })).status).toBe(1);
    await busyBecomes(resv, { write: true });
    await signal(tl3, 1);
    await busyBecomes(resv, ALL(false));
    await Promise.all([tl1, tl2, tl3].map((tl) => gpu.call('fence.timeline.destroy', { tl })));
  });

  it('an earlier point of the same remote timeline never replaces a later unsignalled one (CVE-2022-49935)', async () => {
    const tl = await tlCreate('no-replace');
    const resv = await newResv();
    await importInto(resv, await gpuFence(tl, 5), 'write');
    await importInto(resv, await gpuFence(tl, 3), 'write');
    expect(await buffer.call('fence.resv.count', { resv, usage: 'write' })).toEqual({ count: 2 });
    await signal(tl, 3);
    await busyBecomes(resv, ALL(true));
    expect(await buffer.call('fence.resv.count', { resv, usage: 'write' })).toEqual({ count: 1 });
    await signal(tl, 5);
    await busyBecomes(resv, ALL(false));
    await gpu.call('fence.timeline.destroy', { tl });
  });
});

describe('waiting for a reservation object\'s state in its VM (wait.resv.busy)', () => {
  it('answers on the signal that makes the state hold, not before; fails with ERR_TIMEOUT and the last state when it never holds', async () => {
    const tl = await tlCreate('wait-busy');
    const resv = await newResv();
    await importInto(resv, await gpuFence(tl, 1), 'write');
    let answered = false;
    const idle = buffer.call<Busy>('wait.resv.busy', { resv, want: ALL(false), timeoutMs: 20_000 });
    void idle.then(() => { answered = true; }, () => undefined);
    // The buffer VM serves its commands in order: once the ping is answered, the wait has looked and is waiting.
    await buffer.call('kernel.ping');
    expect(answered).toBe(false);
    await expect(buffer.call('wait.resv.busy', { resv, want: { write: false }, timeoutMs: 50 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT', message: expect.stringContaining('"write":{"poll":true,"export":true}') });
    await signal(tl, 1);
    expect(await idle).toEqual({ read: { poll: false, export: false }, write: { poll: false, export: false }, rw: { poll: false, export: false } });
    await gpu.call('fence.timeline.destroy', { tl });
  });
});

describe('the sync_file bridge across three VMs', () => {
  it('a sync_file exported from the buffer VM\'s reservation object (remote and local fences) completes in the display VM, with the error', async () => {
    const tl = await tlCreate('bridge');
    const resv = await newResv();
    const sw = (await buffer.call<{ sw: number }>('fence.sw.create', { name: 'local-engine' })).sw;
    const local = (await buffer.call<{ fence: number }>('fence.sw.point', { sw, value: 1 })).fence;
    await buffer.call('fence.resv.add', { resv, fence: local, usage: 'read' });
    await importInto(resv, await gpuFence(tl, 1), 'write');
    await importInto(resv, await gpuFence(tl, 2), 'read');
    const snap = (await buffer.call<{ fence: number }>('fence.resv.export', { resv, access: 'write' })).fence;
    const exported = await buffer.call<{ leaves: number; pending: number }>('fence.export', { peer: display.domid, fence: snap, cookie: 1, name: 'scanout' });
    expect(exported).toEqual({ leaves: 3, pending: 3 });
    const got = await display.call<{ fence: number; numFences: number; name: string }>('fence.import', { src: buffer.domid, cookie: 1 });
    expect(got).toMatchObject({ numFences: 3, name: 'scanout' });
    const waiting = display.call<Wait>('fence.wait', { fence: got.fence, timeoutMs: 5000 });
    await signal(tl, 1);
    await signal(tl, 2, 5);
    await buffer.call('fence.sw.inc', { sw, count: 1 });
    const w = await waiting;
    expect(w.ret).toBeGreaterThan(0);
    const info = await display.call<{ fileStatus: number; fences: Array<{ status: number; objName: string }> }>('fence.info', { fence: got.fence });
    expect(info.fileStatus).toBe(EIO);
    expect(info.fences.map((f) => f.status).sort()).toEqual([EIO, 1, 1].sort());
    expect(await buffer.call('fence.bridge.releaseIdle')).toEqual({ released: 2 });
    await buffer.call('fence.sw.close', { sw });
    await gpu.call('fence.timeline.destroy', { tl });
  });

  it('killing the gpu VM: its pending fences fail with -EPIPE in the buffer VM and, through the bridge, in the display VM', async () => {
    const tl = await tlCreate('doomed');
    const resv = await newResv();
    await importInto(resv, await gpuFence(tl, 1), 'write');
    const snap = (await buffer.call<{ fence: number }>('fence.resv.export', { resv, access: 'write' })).fence;
    await buffer.call('fence.export', { peer: display.domid, fence: snap, cookie: 2 });
    const got = await display.call<{ fence: number }>('fence.import', { src: buffer.domid, cookie: 2 });
    const waits = [
      display.call<Wait>('fence.wait', { fence: got.fence, timeoutMs: 10_000 }),
      buffer.call<Wait>('fence.wait', { fence: snap, timeoutMs: 10_000 }),
    ];
    gpu.kill('SIGKILL');
    // Both waits end with the gpu VM's death (-EPIPE), not with their 10 s limit (which leaves status 0).
    const [onDisplay, onBuffer] = await Promise.all(waits);
    expect(onBuffer).toMatchObject({ status: EPIPE });
    expect(onDisplay).toMatchObject({ status: EPIPE });
    expect([onBuffer?.ret, onDisplay?.ret].every((r) => r !== 0)).toBe(true);
    expect((await gpu.exited).signal).toBe('SIGKILL');
    await busyBecomes(resv, ALL(false));
    expect(await buffer.call('fence.bridge.releaseIdle')).toEqual({ released: 1 });
  });
});
