/** sync_file semantics: info, aggregate status, names, poll, merge. */
import { describe, expect, it } from 'vitest';
import { allocateFenceContexts } from '../../src/fence/fence-context.ts';
import { EINTR, EINVAL, EIO, ENOENT, ENOTTY } from '../../src/fence/errno.ts';
import { DmaFenceArray } from '../../src/fence/fence-array.ts';
import { SwSyncTimeline } from '../../src/fence/sw-sync.ts';
import { getStub } from '../../src/fence/stub.ts';
import { POLLIN, SyncFile, syncFileGetFence, syncFileMerge } from '../../src/fence/sync-file.ts';
import { expectErrno, mockFence } from './helpers.ts';


describe('SYNC_IOC_FILE_INFO', () => {
  it('num_fences = 0 returns only the count, the name and the whole-file status', () => {
    const t = new SwSyncTimeline();
    const file = syncFileMerge('pair', t.createFence(1), new SwSyncTimeline().createFence(1));
    expect(file.getInfo()).toEqual({ name: 'pair', status: 0, flags: 0, numFences: 2, fences: [] });
  });

  it('per-fence entries: names, status, timestamp only once signalled', () => {
    const a = new SwSyncTimeline('ta');
    const b = new SwSyncTimeline('tb');
    const file = syncFileMerge('m', a.createFence(1), b.createFence(1));
    a.inc(1);
    const info = file.getInfo({ numFences: 2 });
    expect(info.numFences).toBe(2);
    const [first, second] = info.fences;
    expect(first).toMatchObject({ objName: 'ta', driverName: 'sw_sync', status: 1, flags: 0 });
    expect(first?.timestampNs).toBeGreaterThan(0n);
    expect(second).toMatchObject({ objName: 'tb', status: 0, timestampNs: 0n });
    expect(info.status).toBe(0);
  });

  it('aggregate status is that of the first leaf that is not signalled-OK', () => {
    // Leaves come out ordered by context: t1's before t2's.
    const setup = (closeFirst: boolean): SyncFile => {
      const t1 = new SwSyncTimeline();
      const t2 = new SwSyncTimeline();
      const file = syncFileMerge('m', t1.createFence(1), t2.createFence(1));
      (closeFirst ? t1 : t2).close();
      return file;
    };
    expect(setup(false).getInfo({ numFences: 2 }).status).toBe(0); // [active, error]
    expect(setup(true).getInfo({ numFences: 2 }).status).toBe(ENOENT); // [error, active]
    const t = new SwSyncTimeline();
    const ok = syncFileMerge('m', t.createFence(1), new SwSyncTimeline().createFence(0));
    t.inc(1);
    expect(ok.getInfo({ numFences: 4 }).status).toBe(1);
  });

  it('whole-file status is the merged fence’s status, errors included', () => {
    const f = mockFence();
    const file = SyncFile.create(f);
    expect(file.getInfo().status).toBe(0);
    f.setError(EIO);
    expect(file.getInfo().status).toBe(0);
    f.signal();
    expect(file.getInfo().status).toBe(EIO);
  });

  it('rejects flags, pad, and a too-small fence buffer with EINVAL', () => {
    const file = syncFileMerge('m', SyncFile.create(mockFence()), SyncFile.create(mockFence()));
    expectErrno(() => file.getInfo({ flags: 1 }), EINVAL);
    expectErrno(() => file.getInfo({ pad: 1 }), EINVAL);
    expectErrno(() => file.getInfo({ numFences: 1 }), EINVAL);
    expect(file.getInfo({ numFences: 2 }).fences).toHaveLength(2);
  });

  it('counts the leaves of a container', () => {
    const array = new DmaFenceArray([mockFence(), mockFence(), mockFence()], allocateFenceContexts(1), 1);
    expect(SyncFile.create(array).getInfo().numFences).toBe(3);
  });
});

describe('sync_file names', () => {
  it('defaults to driver-timeline<context>-<seqno>', () => {
    const t = new SwSyncTimeline('tl');
    const file = t.createFence(7);
    expect(file.name).toBe(`sw_sync-tl${t.context}-7`);
  });

  it('keeps at most 31 bytes', () => {
    const file = SyncFile.create(mockFence(), 'x'.repeat(40));
    expect(file.name).toBe('x'.repeat(31));
    const wide = SyncFile.create(mockFence(), 'é'.repeat(20));
    expect(new TextEncoder().encode(wide.name).length).toBeLessThanOrEqual(31);
  });

  it('a merge takes the requested name', () => {
    expect(syncFileMerge('merged', SyncFile.create(mockFence()), SyncFile.create(mockFence())).name).toBe('merged');
  });
});

describe('sync_file poll', () => {
  it('POLLIN once signalled, errors included; the first poll enables signalling', () => {
    const f = mockFence();
    const file = SyncFile.create(f);
    expect(f.signalingEnabled).toBe(false);
    expect(file.poll()).toBe(0);
    expect(f.signalingEnabled).toBe(true);
    f.setError(EIO);
    f.signal();
    expect(file.poll()).toBe(POLLIN);
  });

  it('wait: 1 when signalled, 0 on timeout, EINTR when interrupted', async () => {
    const f = mockFence();
    const file = SyncFile.create(f);
    expect(await file.wait(0)).toBe(0);
    expect(await file.wait(2)).toBe(0);
    const ac = new AbortController();
    const interrupted = file.wait(-1, ac.signal);
    ac.abort();
    expect(await interrupted).toBe(EINTR);
    const waiting = file.wait(-1);
    f.signal();
    expect(await waiting).toBe(1);
  });
});

describe('SYNC_IOC_MERGE', () => {
  it('merges through dma_fence_unwrap_merge: a pending and a signalled fence give the pending one', () => {
    const pending = mockFence();
    const file = syncFileMerge('m', SyncFile.create(pending), SyncFile.create(getStub()));
    expect(file.fence).toBe(pending);
  });

  it('two signalled inputs give a signalled stub, never an empty file', () => {
    const a = mockFence();
    const b = mockFence();
    a.signal();
    b.signal();
    const file = syncFileMerge('m', SyncFile.create(a), SyncFile.create(b));
    expect(file.poll()).toBe(POLLIN);
    expect(file.getInfo().numFences).toBe(1);
  });

  it('errors: EINVAL flags/pad, ENOENT bad fd2, ENOTTY when issued on something else', () => {
    const file = SyncFile.create(mockFence());
    expectErrno(() => syncFileMerge('m', file, file, 2), EINVAL);
    expectErrno(() => syncFileMerge('m', file, 42), ENOENT);
    expectErrno(() => syncFileMerge('m', {} as SyncFile, file), ENOTTY);
  });

  it('sync_file_get_fence returns null for anything but a sync_file', () => {
    const f = mockFence();
    expect(syncFileGetFence(SyncFile.create(f))).toBe(f);
    expect(syncFileGetFence(f)).toBeNull();
    expect(syncFileGetFence(undefined)).toBeNull();
  });
});
