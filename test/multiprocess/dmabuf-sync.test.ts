/**
 * Fences on shared buffers between real VM processes (SPEC.md 11A): the
 * exporter keeps the one reservation object of each buffer, importers add
 * to it and read it by message; begin_cpu_access waits for the other VM's
 * fences; poll readiness; IGT dmabuf_sync_file across VMs; and a HOSTILE VM
 * that sends raw DMABUF_RESV_ADD requests to remove or hide the fences of
 * the buffer's other users, and cannot. Every test ends with nothing held
 * in any VM or at the backend; the harness reaps every process and checks
 * that no shared-memory file remains.
 */
import { describe, expect, it } from 'vitest';
import type { VmProcess } from '../../vm-sim/process/spawn/spawn-vm.ts';
import { startRun, startVm } from './harness.ts';
import { expectVmClean } from '../helpers/leaks.ts';

type Access = 'read' | 'write' | 'rw';
type Busy = Record<Access, { poll: boolean; export: boolean }>;
interface Entry { dom: number; seqno: number; usage: string; status: number }
interface Probe { ok: boolean; code?: string; value?: Record<string, unknown>; fences?: number[] }
interface Ref { tl?: number; seqno?: number; slot?: number; status?: number }

/** Export `buf` of `exp` to `imp` and open an fd there. */
async function share(exp: VmProcess, imp: VmProcess, buf: number): Promise<{ hid: string; fd: number }> {
  const { hid } = await exp.call<{ hid: string }>('dmabuf.export', { buf, domid: imp.domid });
  await imp.call('dmabuf.readEvent', { block: false });
  const { fd } = await imp.call<{ fd: number }>('dmabuf.exportFd', { hid });
  return { hid, fd };
}

const timeline = async (vm: VmProcess, name: string): Promise<number> => (await vm.call<{ tl: number }>('fence.timeline.create', { name })).tl;
const point = async (vm: VmProcess, tl: number, seqno: number): Promise<number> => (await vm.call<{ fence: number }>('fence.create', { tl, seqno })).fence;
const signal = (vm: VmProcess, tl: number, seqno: number): Promise<unknown> => vm.call('fence.signal', { tl, seqno });
const entries = async (exp: VmProcess, buf: number): Promise<Entry[]> => (await exp.call<{ entries: Entry[] }>('dmabuf.sync.entries', { buf })).entries;

/** Implicit waits a VM's buffers (exporter) or fds (importer) have begun so far. */
const cpuWaits = async (vm: VmProcess, side: 'exporter' | 'importer'): Promise<number> =>
  (await vm.call<{ cpu: Record<string, { waited: number }> }>('dmabuf.sync.stats')).cpu[side]!.waited;

/** Closes every timeline of the VM (fences still pending signal -ENOENT) so that no share or page is left. */
async function dropTimelines(vm: VmProcess, tls: number[]): Promise<void> {
  for (const tl of tls) await vm.call('fence.timeline.destroy', { tl });
  await vm.call('fence.bridge.releaseIdle');
}

async function unshareAll(exp: VmProcess, imps: Array<[VmProcess, { hid: string; fd: number }]>, buf: number): Promise<void> {
  for (const [imp, s] of imps) {
    await imp.call('dmabuf.release', { fd: s.fd });
    await exp.call('dmabuf.unexport', { hid: s.hid });
    await exp.call('dmabuf.waitReleased', { hid: s.hid, timeoutMs: 20_000 });
  }
  await exp.call('dmabuf.put', { buf });
}

describe('reservation objects on shared buffers between VM processes', () => {
  it('a hostile VM adds earlier, unrelated, degraded, foreign and malformed fences with raw requests: each appended or refused, no unsignalled fence ever removed, the other users unaffected', { timeout: 60_000 }, async () => {
    const run = await startRun();
    const [exp, honest, hostile] = await Promise.all([startVm(run, 'exporter', 2048), startVm(run, 'honest', 1024), startVm(run, 'hostile', 1024)]);
    const { buf } = await exp.call<{ buf: number }>('dmabuf.alloc', { bytes: 16384 });
    const hs = await share(exp, honest, buf);
    const xs = await share(exp, hostile, buf);
    // The victims: the exporter's pending write fence and the honest importer's pending read fence.
    const etl = await timeline(exp, 'render');
    const itl = await timeline(honest, 'sampler');
    await exp.call('dmabuf.sync.add', { buf, fence: await point(exp, etl, 1), usage: 'write' });
    expect(await honest.call('dmabuf.sync.add', { fd: hs.fd, fence: await point(honest, itl, 5), usage: 'read' })).toEqual({ replaced: 0, appended: 1 });
    const victims = [{ dom: exp.domid, seqno: 1, usage: 'write', status: 0 }, { dom: honest.domid, seqno: 5, usage: 'read', status: 0 }];
    expect((await entries(exp, buf)).map(({ dom, seqno, usage, status }) => ({ dom, seqno, usage, status }))).toEqual(victims);

    const htl = await timeline(hostile, 'evil');
    const htl2 = await timeline(hostile, 'evil-2');
    /** A raw DMABUF_RESV_ADD from the hostile VM: its own points, refs prepared by its fence layer, optionally mangled. */
    const attack = async (tl: number, seqnos: number[], usage: string, opts: { hid?: string; fdId?: number; mangle?: (r: Ref[]) => Ref[] } = {}): Promise<Probe> => {
      const fences = await Promise.all(seqnos.map((q) => point(hostile, tl, q)));
      const { prepared, refs } = await hostile.call<{ prepared: number; refs: Ref[] }>('dmabuf.sync.prepareRefs', { peer: exp.domid, fences });
      const body = { hid: opts.hid ?? xs.hid, fdId: opts.fdId ?? 1, usage, fences: opts.mangle ? opts.mangle(refs) : refs };
      return hostile.call<Probe>('dmabuf.sync.probe', { type: 'DMABUF_RESV_ADD', dst: exp.domid, body, prepared });
    };
    // Earlier point of its own timeline after a later one; an unrelated timeline; a degraded usage: all appended.
    expect(await attack(htl, [10], 'write')).toMatchObject({ ok: true, value: { replaced: 0, appended: 1 } });
    expect(await attack(htl, [3], 'write')).toMatchObject({ ok: true, value: { replaced: 0, appended: 1 } });
    expect(await attack(htl2, [1], 'write')).toMatchObject({ ok: true, value: { replaced: 0, appended: 1 } });
    expect(await attack(htl, [10], 'read')).toMatchObject({ ok: true, value: { replaced: 0, appended: 1 } });
    // Fences for a buffer not exported to it (the honest importer's id, a guessed key), or through an fd it does not hold.
    expect(await attack(htl, [20], 'write', { hid: hs.hid })).toMatchObject({ ok: false, code: 'ERR_NOT_IMPORTER' });
    const [dom, cnt] = xs.hid.split(':');
    expect(await attack(htl, [20], 'write', { hid: `${dom}:${cnt}:${'00'.repeat(16)}` })).toMatchObject({ ok: false, code: 'ERR_UNKNOWN_BUFFER' });
    expect(await attack(htl, [20], 'write', { fdId: 77 })).toMatchObject({ ok: false, code: 'ERR_BAD_ARGUMENT' });
    // Malformed references: refused whole, nothing stored, nothing held.
    const mangles: Array<[string, (r: Ref[]) => Ref[], string]> = [
      ['slot tagged for another seqno', (r) => [{ ...r[0]!, seqno: r[0]!.seqno! + 1 }], 'ERR_BAD_ARGUMENT'],
      ['a timeline never shared', (r) => [{ ...r[0]!, tl: 999 }], 'ERR_FENCE_UNKNOWN_TIMELINE'],
      ['both slot and status', (r) => [{ ...r[0]!, status: 1 }], 'ERR_BAD_ARGUMENT'],
      ['a good ref, then one with a free slot', (r) => [r[0]!, { ...r[0]!, slot: 251 }], 'ERR_BAD_ARGUMENT'],
      ['no fences', () => [], 'ERR_BAD_ARGUMENT'],
    ];
    for (const [what, mangle, code] of mangles) expect(await attack(htl, [40], 'write', { mangle }), what).toMatchObject({ ok: false, code });
    // Out of schema (kernel usage, 257 refs): the hostile VM's own codec refuses to send it; the backend would refuse the frame.
    await expect(hostile.call('dmabuf.sync.probe', { type: 'DMABUF_RESV_ADD', dst: exp.domid, body: { hid: xs.hid, fdId: 1, usage: 'kernel', fences: [{ status: 1 }] } })).resolves.toMatchObject({ ok: false, code: 'ERR_FIELD_RANGE' });

    const stored = (await entries(exp, buf)).map(({ dom, seqno, usage, status }) => ({ dom, seqno, usage, status }));
    expect(stored).toEqual([
      ...victims,
      { dom: hostile.domid, seqno: 10, usage: 'write', status: 0 },
      { dom: hostile.domid, seqno: 3, usage: 'write', status: 0 },
      { dom: hostile.domid, seqno: 1, usage: 'write', status: 0 },
      { dom: hostile.domid, seqno: 10, usage: 'read', status: 0 },
    ]);
    // The honest importer is unaffected: it reads the snapshot, and its write still waits for the victims.
    expect((await honest.call<{ fences: number[] }>('dmabuf.sync.fences', { fd: hs.fd, usage: 'read' })).fences).toHaveLength(6);
    await expect(honest.call('dmabuf.sync.begin', { fd: hs.fd, dir: 'to_device', timeoutMs: 50 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    await expect(exp.call('dmabuf.sync.begin', { buf, dir: 'to_device', timeoutMs: 50 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    await signal(exp, etl, 1);
    await signal(hostile, htl, 10);
    await signal(hostile, htl2, 1);
    await expect(exp.call('dmabuf.sync.begin', { buf, dir: 'to_device', timeoutMs: 50 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    await signal(honest, itl, 5);
    expect(await exp.call<{ waitedMs: number }>('dmabuf.sync.begin', { buf, dir: 'to_device', timeoutMs: 5000 })).toMatchObject({});
    await exp.call('dmabuf.sync.end', { buf, dir: 'to_device' });
    const st = await exp.call<{ server: { refused: Record<string, number> } }>('dmabuf.sync.stats');
    expect(st.server.refused).toMatchObject({ ERR_NOT_IMPORTER: 1, ERR_UNKNOWN_BUFFER: 1, ERR_FENCE_UNKNOWN_TIMELINE: 1 });

    await unshareAll(exp, [[honest, hs], [hostile, xs]], buf);
    await dropTimelines(exp, [etl]);
    await dropTimelines(honest, [itl]);
    await dropTimelines(hostile, [htl, htl2]);
    for (const vm of [exp, honest, hostile]) await expectVmClean(run, vm, { fences: true, kernel: false, grantsInUse: false });
  });

  it('implicit sync: the importer\'s begin_cpu_access waits for the exporter\'s write fence and completes once it signals; the exporter\'s write waits for the importer\'s read; timeouts are clear errors; poll readiness', { timeout: 60_000 }, async () => {
    const run = await startRun();
    const [exp, imp] = await Promise.all([startVm(run, 'exporter', 2048), startVm(run, 'importer', 1024)]);
    const { buf } = await exp.call<{ buf: number }>('dmabuf.alloc', { bytes: 65536 });
    const s = await share(exp, imp, buf);
    const etl = await timeline(exp, 'render');
    const itl = await timeline(imp, 'sampler');
    expect(await imp.call('dmabuf.sync.poll', { fd: s.fd })).toMatchObject({ readable: true, writable: true });
    await exp.call('dmabuf.sync.add', { buf, fence: await point(exp, etl, 1), usage: 'write' });
    expect(await imp.call('dmabuf.sync.poll', { fd: s.fd })).toMatchObject({ readable: false, writable: false });
    // The read begins in the importer VM and waits there until the exporter VM signals.
    let beginDone = false;
    const impWaited = await cpuWaits(imp, 'importer');
    const begin = imp.call<{ waitedMs: number }>('dmabuf.sync.begin', { fd: s.fd, dir: 'from_device', timeoutMs: 10_000 });
    void begin.then(() => { beginDone = true; }, () => undefined);
    // The importer's wait began (the exporter answered with the pending fence); it cannot end before the signal.
    await imp.call('dmabuf.sync.untilWaited', { side: 'importer', count: impWaited + 1 });
    expect(beginDone).toBe(false);
    await signal(exp, etl, 1);
    // It ended by the signal: a wait that ran out of its 10 s would have rejected with ERR_TIMEOUT.
    const waited = await begin;
    expect(waited.waitedMs).toBeGreaterThan(0);
    await imp.call('dmabuf.sync.end', { fd: s.fd, dir: 'from_device' });
    // Timeout path: a write fence that never signals within the limit.
    await exp.call('dmabuf.sync.add', { buf, fence: await point(exp, etl, 2), usage: 'write' });
    await expect(imp.call('dmabuf.sync.begin', { fd: s.fd, dir: 'from_device', timeoutMs: 60 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT', message: expect.stringContaining('implicit sync') });
    await signal(exp, etl, 2);
    // The other way round: the importer's read fence holds the exporter's write, not its read.
    await imp.call('dmabuf.sync.add', { fd: s.fd, fence: await point(imp, itl, 1), usage: 'read' });
    // The add was answered once the exporter had stored the fence: its buffer is busy for writers now.
    expect(await exp.call('dmabuf.sync.poll', { buf })).toMatchObject({ readable: true, writable: false });
    await exp.call('dmabuf.sync.begin', { buf, dir: 'from_device', timeoutMs: 1000 });
    await exp.call('dmabuf.sync.end', { buf, dir: 'from_device' });
    let writeDone = false;
    const expWaited = await cpuWaits(exp, 'exporter');
    const write = exp.call<{ waitedMs: number }>('dmabuf.sync.begin', { buf, dir: 'to_device', timeoutMs: 10_000 });
    void write.then(() => { writeDone = true; }, () => undefined);
    await exp.call('dmabuf.sync.untilWaited', { side: 'exporter', count: expWaited + 1 }); // it found the importer's read fence pending
    // A blocking poll in the exporter returns writable once the importer signals.
    const polled = exp.call<{ writable: boolean }>('dmabuf.sync.poll', { buf, events: 'out', timeoutMs: 10_000 });
    expect(writeDone).toBe(false);
    await signal(imp, itl, 1);
    expect((await write).waitedMs).toBeGreaterThan(0);
    expect(await polled).toMatchObject({ writable: true });
    await exp.call('dmabuf.sync.end', { buf, dir: 'to_device' });
    expect(await imp.call('dmabuf.sync.poll', { fd: s.fd })).toMatchObject({ readable: true, writable: true });

    await unshareAll(exp, [[imp, s]], buf);
    await dropTimelines(exp, [etl]);
    await dropTimelines(imp, [itl]);
    for (const vm of [exp, imp]) await expectVmClean(run, vm, { fences: true, kernel: false, grantsInUse: false });
  });

  it('IGT dmabuf_sync_file across VMs: export-basic, export-multiwait, import-basic and import-multiple-read-write, a file from the buffer sent to a third VM', { timeout: 60_000 }, async () => {
    const run = await startRun();
    const [exp, imp, display] = await Promise.all([startVm(run, 'exporter', 2048), startVm(run, 'importer', 1024), startVm(run, 'display', 1024)]);
    const { buf } = await exp.call<{ buf: number }>('dmabuf.alloc', { bytes: 8192 });
    const s = await share(exp, imp, buf);
    const sides: Array<[VmProcess, Record<string, number>]> = [[exp, { buf }], [imp, { fd: s.fd }]];
    // Each side's view, by poll() and by an exported sync_file; the VM answers once it matches (an add makes the
    // buffer busy when it is answered; a signal reaches the other VM by page and event).
    const busyBecomes = async (want: Partial<Record<Access, boolean>>): Promise<void> => {
      for (const [vm, args] of sides) {
        const b = await vm.call<Busy>('wait.dmabuf.busy', { ...args, want, timeoutMs: 10_000 });
        expect(Object.entries(want).every(([k, v]) => b[k as Access].poll === v && b[k as Access].export === v), `${vm.name} ${JSON.stringify(b)}`).toBe(true);
      }
    };
    const ALL = (v: boolean) => ({ read: v, write: v, rw: v });
    await busyBecomes(ALL(false));
    expect(await imp.call('dmabuf.sync.export', { fd: s.fd, access: 'write' })).toMatchObject({ stub: true, numFences: 1, status: 1 });

    // export-basic: a read fence of the exporter, then a write fence.
    const vgem = await timeline(exp, 'vgem');
    await exp.call('dmabuf.sync.add', { buf, fence: await point(exp, vgem, 1), usage: 'read' });
    await busyBecomes({ read: false, write: true, rw: true });
    await signal(exp, vgem, 1);
    await busyBecomes(ALL(false));
    await exp.call('dmabuf.sync.add', { buf, fence: await point(exp, vgem, 2), usage: 'write' });
    await busyBecomes(ALL(true));
    await signal(exp, vgem, 2);
    await busyBecomes(ALL(false));

    // export-multiwait: the importer's WRITE export is a snapshot of f1 and f2; f3 comes later.
    const t = await Promise.all(['f1', 'f2', 'f3'].map((n) => timeline(exp, n)));
    await exp.call('dmabuf.sync.add', { buf, fence: await point(exp, t[0]!, 1), usage: 'read' });
    await exp.call('dmabuf.sync.add', { buf, fence: await point(exp, t[1]!, 1), usage: 'read' });
    const snap = await imp.call<{ fence: number; numFences: number }>('dmabuf.sync.export', { fd: s.fd, access: 'write' });
    expect(snap.numFences).toBe(2);
    await exp.call('dmabuf.sync.add', { buf, fence: await point(exp, t[2]!, 1), usage: 'read' });
    await signal(exp, t[0]!, 1);
    await signal(exp, t[1]!, 1);
    expect(await imp.call('fence.wait', { fence: snap.fence, timeoutMs: 5000 })).toMatchObject({ status: 1 });
    await busyBecomes({ read: false, write: true });
    await signal(exp, t[2]!, 1);
    await busyBecomes(ALL(false));

    // import-basic from the importer: READ, then WRITE, then RW fences of its own.
    const sw = await timeline(imp, 'sw_sync');
    await imp.call('dmabuf.sync.import', { fd: s.fd, fence: await point(imp, sw, 1), access: 'read' });
    await busyBecomes({ read: false, write: true, rw: true });
    await signal(imp, sw, 1);
    await busyBecomes(ALL(false));
    await imp.call('dmabuf.sync.import', { fd: s.fd, fence: await point(imp, sw, 2), access: 'write' });
    await busyBecomes(ALL(true));
    await signal(imp, sw, 2);
    await busyBecomes(ALL(false));

    // import-multiple-read-write: 8 read fences of 8 timelines and one write fence; reads accumulate, none replaced.
    const readers = await Promise.all(Array.from({ length: 8 }, (_, i) => timeline(imp, `r${i}`)));
    for (const r of readers) await imp.call('dmabuf.sync.import', { fd: s.fd, fence: await point(imp, r, 1), access: 'read' });
    const writer = await timeline(imp, 'w');
    await imp.call('dmabuf.sync.import', { fd: s.fd, fence: await point(imp, writer, 1), access: 'write' });
    for (const r of [...readers].reverse()) {
      await busyBecomes(ALL(true));
      await signal(imp, r, 1);
    }
    await busyBecomes(ALL(true));
    await signal(imp, writer, 1);
    await busyBecomes(ALL(false));

    // A sync_file exported from the buffer in the importer VM goes on to a third VM and completes there.
    const late = await timeline(exp, 'late');
    await exp.call('dmabuf.sync.add', { buf, fence: await point(exp, late, 1), usage: 'write' });
    const file = await imp.call<{ fence: number }>('dmabuf.sync.export', { fd: s.fd, access: 'read' });
    await imp.call('fence.export', { peer: display.domid, fence: file.fence, cookie: 1 });
    const wait = display.call<{ ret: number; status: number }>('fence.waitImport', { src: imp.domid, cookie: 1, timeoutMs: 10_000 });
    await signal(exp, late, 1);
    expect(await wait).toMatchObject({ status: 1 });

    await unshareAll(exp, [[imp, s]], buf);
    await dropTimelines(exp, [vgem, ...t, late]);
    await dropTimelines(imp, [sw, ...readers, writer]);
    for (const vm of [exp, imp, display]) await expectVmClean(run, vm, { fences: true, kernel: false, grantsInUse: false });
  });
});
