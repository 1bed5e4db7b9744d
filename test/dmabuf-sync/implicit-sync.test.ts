/**
 * Implicit synchronisation of CPU access across VMs, in process (real
 * backend, kernels, grant tables, event channels): begin_cpu_access on the
 * importer waits for the exporter's write fences, on the exporter for the
 * importer's fences as the direction demands, both with a timeout and a
 * clear error; poll readiness on both sides.
 */
import { describe, expect, it } from 'vitest';
import type { DmaFence } from '../../src/fence/dma-fence.ts';
import { POLLIN, POLLOUT } from '../../src/fence/sync-file.ts';
import { codeOf, share, startSyncWorld, unshare } from './world.ts';

describe('begin_cpu_access waits for the other VM\'s fences', () => {
  it('an importer\'s read waits for the exporter\'s write fence and completes once it signals', async () => {
    const { doms: [exp, imp] } = await startSyncWorld(2);
    const s = await share(exp!, imp!);
    const tl = exp!.fences.createTimeline('render');
    await exp!.sync.addFence(s.buf, tl.createFence(1), 'write');
    let begun = false;
    const begin = s.fd.beginCpuAccess('from_device').then(() => { begun = true; });
    await imp!.sync.untilCpuWaited('importer', 1); // the exporter answered with the pending fence: the wait began
    expect(begun).toBe(false);
    tl.signal(1);
    await begin;
    expect(begun).toBe(true);
    await s.fd.endCpuAccess('from_device');
    // A read fence of the exporter does not hold an importer's read, but holds its write.
    await exp!.sync.addFence(s.buf, tl.createFence(2), 'read');
    await s.fd.beginCpuAccess('from_device');
    await s.fd.endCpuAccess('from_device');
    expect(await codeOf(s.fd.beginCpuAccess('to_device', { timeoutMs: 40 }))).toBe('ERR_TIMEOUT');
    tl.signal(2);
    await s.fd.beginCpuAccess('to_device');
    await s.fd.endCpuAccess('to_device');
    expect(imp!.sync.stats().cpu.importer).toMatchObject({ waited: 2, timeouts: 1 });
    await unshare(exp!, s);
  });

  it('the exporter\'s write waits for the importer\'s read fence; its read does not', async () => {
    const { doms: [exp, imp] } = await startSyncWorld(2);
    const s = await share(exp!, imp!);
    const tl = imp!.fences.createTimeline('sampler');
    expect(await imp!.sync.addFence(s.fd, tl.createFence(1), 'read')).toEqual({ replaced: 0, appended: 1 });
    await s.buf.beginCpuAccess('from_device');
    await s.buf.endCpuAccess('from_device');
    let begun = false;
    const begin = s.buf.beginCpuAccess('to_device').then(() => { begun = true; });
    await exp!.sync.untilCpuWaited('exporter', 1); // it found the importer's read fence pending
    expect(begun).toBe(false);
    tl.signal(1);
    await begin;
    await s.buf.endCpuAccess('to_device');
    await unshare(exp!, s);
  });

  it('times out with ERR_TIMEOUT naming the pending fence, and leaves the buffer usable', async () => {
    const { doms: [exp, imp] } = await startSyncWorld(2);
    const s = await share(exp!, imp!);
    const tl = imp!.fences.createTimeline('stuck');
    await imp!.sync.addFence(s.fd, tl.createFence(7), 'write');
    const err = await s.buf.beginCpuAccess('from_device', { timeoutMs: 50 }).then(() => undefined, (e: Error & { code?: string }) => e);
    expect(err?.code).toBe('ERR_TIMEOUT');
    expect(err?.message).toMatch(/implicit sync: begin_cpu_access\(from_device\).*1 fence\(s\) still pending: hdmabuf-remote:stuck@d/);
    expect(s.buf.use().cpuAccess).toBe(0);
    tl.signal(7);
    await s.buf.beginCpuAccess('from_device', { timeoutMs: 1000 });
    await s.buf.endCpuAccess('from_device');
    await unshare(exp!, s);
  });

  it('the importer\'s death completes its fences (-EPIPE): the exporter\'s wait ends, it does not hang', async () => {
    const { doms: [exp, imp] } = await startSyncWorld(2);
    const s = await share(exp!, imp!);
    const tl = imp!.fences.createTimeline('doomed');
    await imp!.sync.addFence(s.fd, tl.createFence(1), 'write');
    const begin = s.buf.beginCpuAccess('to_device', { timeoutMs: 10_000 });
    await imp!.kernel.hv.conn.destroy();
    await begin;
    await s.buf.endCpuAccess('to_device');
    await exp!.driver.waitReleased(s.hid, 10_000).catch(() => undefined);
    await s.buf.put();
  });
});

/** Resolves when a callback is next queued on `fence`: someone began to wait for it (dma_fence_add_callback). */
function nextCallbackOn(fence: DmaFence): Promise<void> {
  return new Promise((resolve) => {
    const own = fence as DmaFence & { addCallback: DmaFence['addCallback'] };
    own.addCallback = (cb) => {
      delete (own as Partial<typeof own>).addCallback; // the prototype's again
      const ret = fence.addCallback(cb);
      resolve();
      return ret;
    };
  });
}

describe('poll readiness', () => {
  it('readable when no writer is pending, writable when nothing is pending, on both sides', async () => {
    const { doms: [exp, imp] } = await startSyncWorld(2);
    const s = await share(exp!, imp!);
    const both = POLLIN | POLLOUT;
    expect(await exp!.sync.poll(s.buf, both)).toBe(both);
    expect(await imp!.sync.poll(s.fd, both)).toBe(both);
    const tl = imp!.fences.createTimeline('reader');
    await imp!.sync.addFence(s.fd, tl.createFence(1), 'read');
    expect(await exp!.sync.poll(s.buf, both)).toBe(POLLIN);
    expect(await imp!.sync.poll(s.fd, both)).toBe(POLLIN);
    const etl = exp!.fences.createTimeline('writer');
    await exp!.sync.addFence(s.buf, etl.createFence(1), 'write');
    expect(await exp!.sync.poll(s.buf, both)).toBe(0);
    expect(await imp!.sync.poll(s.fd, both)).toBe(0);
    // A blocking poll for POLLIN returns once the writer signals, with the reader still pending: the writer is
    // signalled once the poll waits on the importer's copy of its fence (the same pending point is the same fence).
    const [writer] = await imp!.sync.pendingFences(s.fd, 'write');
    let answered = false;
    const waiting = nextCallbackOn(writer!.fence);
    const polled = imp!.sync.poll(s.fd, POLLIN, 10_000).then((r) => { answered = true; return r; });
    await waiting;
    expect(answered).toBe(false);
    etl.signal(1);
    expect(await polled).toBe(POLLIN);
    expect(await imp!.sync.poll(s.fd, POLLOUT, 20)).toBe(0);
    tl.signal(1);
    expect(await exp!.sync.poll(s.buf, POLLOUT, 5000)).toBe(POLLOUT);
    expect(await imp!.sync.poll(s.fd, both)).toBe(both);
    await unshare(exp!, s);
  });
});
