/**
 * Port of IGT tests/dmabuf_sync_file.c and vgem_basic
 * dmabuf-fence / dmabuf-fence-before. vgem's read and write fences are
 * mock fences added to the buffer's reservation object with READ / WRITE usage.
 */
import { describe, expect, it } from 'vitest';
import {
  DMA_BUF_SYNC_READ,
  DMA_BUF_SYNC_RW,
  DMA_BUF_SYNC_WRITE,
  dmaBufPoll,
  exportSyncFile,
  importSyncFile,
} from '../../src/fence/dma-buf-sync-file.ts';
import type { DmaFence } from '../../src/fence/dma-fence.ts';
import { DmaResv, DmaResvUsage } from '../../src/fence/dma-resv.ts';
import { EINVAL } from '../../src/fence/errno.ts';
import { SwSyncTimeline } from '../../src/fence/sw-sync.ts';
import { getStub } from '../../src/fence/stub.ts';
import { POLLERR, POLLIN, POLLOUT, type SyncFile, syncFileMerge } from '../../src/fence/sync-file.ts';
import { expectErrno, mockFence } from './helpers.ts';

type Access = 'read' | 'write' | 'rw';
const ACCESSES: readonly Access[] = ['read', 'write', 'rw'];

/** dmabuf_busy: poll(…, 0) == 0 with POLLOUT for write access, else POLLIN. */
function dmabufBusy(resv: DmaResv, access: Access): boolean {
  const events = access === 'read' ? POLLIN : POLLOUT;
  return dmaBufPoll(resv, events) === 0;
}

/** sync_file_busy: poll the file with timeout 0. */
function syncFileBusy(file: SyncFile): boolean {
  return file.poll() === 0;
}

/** dmabuf_sync_file_busy: export a sync_file and poll it. */
function dmabufSyncFileBusy(resv: DmaResv, access: Access): boolean {
  return syncFileBusy(exportSyncFile(resv, access));
}

/** vgem_fence_attach: a read fence (READ usage) or, with VGEM_FENCE_WRITE, a write fence. */
function attach(resv: DmaResv, write: boolean): DmaFence {
  const fence = mockFence();
  resv.addFence(fence, write ? DmaResvUsage.WRITE : DmaResvUsage.READ);
  return fence;
}

function expectBusy(resv: DmaResv, expected: Record<Access, boolean>): void {
  for (const access of ACCESSES) {
    expect(dmabufBusy(resv, access), `poll ${access}`).toBe(expected[access]);
    expect(dmabufSyncFileBusy(resv, access), `export ${access}`).toBe(expected[access]);
  }
}
const IDLE = { read: false, write: false, rw: false };
const ALL_BUSY = { read: true, write: true, rw: true };
const READERS_ONLY = { read: false, write: true, rw: true };

describe('IGT dmabuf_sync_file', () => {
  it('export-basic', () => {
    const resv = new DmaResv();
    expectBusy(resv, IDLE);
    const read = attach(resv, false);
    expectBusy(resv, READERS_ONLY);
    read.signal();
    expectBusy(resv, IDLE);
    const write = attach(resv, true);
    expectBusy(resv, ALL_BUSY);
    write.signal();
    expectBusy(resv, IDLE);
  });

  it('export-before-signal', () => {
    const resv = new DmaResv();
    const read = attach(resv, false);
    const readFile = exportSyncFile(resv, 'read');
    const writeFile = exportSyncFile(resv, 'write');
    expect(syncFileBusy(readFile)).toBe(false);
    expect(syncFileBusy(writeFile)).toBe(true);
    read.signal();
    expect(syncFileBusy(readFile)).toBe(false);
    expect(syncFileBusy(writeFile)).toBe(false);

    const write = attach(resv, true);
    const readFile2 = exportSyncFile(resv, 'read');
    const writeFile2 = exportSyncFile(resv, 'write');
    expect(syncFileBusy(readFile2)).toBe(true);
    expect(syncFileBusy(writeFile2)).toBe(true);
    write.signal();
    expect(syncFileBusy(readFile2)).toBe(false);
    expect(syncFileBusy(writeFile2)).toBe(false);
  });

  it('export-multiwait: the export is a snapshot', () => {
    const resv = new DmaResv();
    const f1 = attach(resv, false);
    const f2 = attach(resv, false);
    const file = exportSyncFile(resv, 'write');
    const f3 = attach(resv, false);
    expect(syncFileBusy(file)).toBe(true);
    f1.signal();
    expect(syncFileBusy(file)).toBe(true);
    f2.signal();
    expect(syncFileBusy(file)).toBe(false);
    expect(f3.isSignaled()).toBe(false);
  });

  it('export-wait-after-attach', () => {
    const resv = new DmaResv();
    const readBefore = exportSyncFile(resv, 'read');
    const writeBefore = exportSyncFile(resv, 'write');
    const f1 = attach(resv, true);
    expect(syncFileBusy(readBefore)).toBe(false);
    expect(syncFileBusy(writeBefore)).toBe(false);
    const readAfter = exportSyncFile(resv, 'read');
    const writeAfter = exportSyncFile(resv, 'write');
    expect(syncFileBusy(readAfter)).toBe(true);
    expect(syncFileBusy(writeAfter)).toBe(true);
    f1.signal();
    expect(syncFileBusy(readAfter)).toBe(false);
    expect(syncFileBusy(writeAfter)).toBe(false);
    attach(resv, true);
    expect(dmabufSyncFileBusy(resv, 'read')).toBe(true);
    expect(dmabufSyncFileBusy(resv, 'write')).toBe(true);
  });

  it('import-basic', () => {
    const resv = new DmaResv();
    const timeline = new SwSyncTimeline();
    importSyncFile(resv, timeline.createFence(1), 'read');
    expectBusy(resv, READERS_ONLY);
    timeline.inc(1);
    expectBusy(resv, IDLE);
    importSyncFile(resv, timeline.createFence(2), 'write');
    expectBusy(resv, ALL_BUSY);
    timeline.inc(1);
    expectBusy(resv, IDLE);
    importSyncFile(resv, timeline.createFence(3), 'rw');
    expectBusy(resv, ALL_BUSY);
    timeline.inc(1);
    expectBusy(resv, IDLE);
  });

  it('import-multiple-read-only: 32 imported read fences accumulate', () => {
    const resv = new DmaResv();
    const timelines = Array.from({ length: 32 }, () => new SwSyncTimeline());
    for (const t of timelines) importSyncFile(resv, t.createFence(1), 'read');
    const readFile = exportSyncFile(resv, 'read');
    const writeFile = exportSyncFile(resv, 'write');
    for (let i = timelines.length - 1; i >= 0; i--) {
      expect(dmabufBusy(resv, 'read')).toBe(false);
      expect(syncFileBusy(readFile)).toBe(false);
      expect(dmabufBusy(resv, 'write')).toBe(true);
      expect(syncFileBusy(writeFile)).toBe(true);
      timelines[i]?.inc(1);
    }
    expectBusy(resv, IDLE);
    expect(syncFileBusy(writeFile)).toBe(false);
  });

  it('import-multiple-read-write: the write fence keeps reads busy too', () => {
    const resv = new DmaResv();
    const timelines = Array.from({ length: 32 }, () => new SwSyncTimeline());
    for (const t of timelines) importSyncFile(resv, t.createFence(1), 'read');
    const writer = new SwSyncTimeline();
    importSyncFile(resv, writer.createFence(1), 'write');
    const readFile = exportSyncFile(resv, 'read');
    const writeFile = exportSyncFile(resv, 'write');
    for (let i = timelines.length - 1; i >= 0; i--) {
      expectBusy(resv, ALL_BUSY);
      expect(syncFileBusy(readFile)).toBe(true);
      expect(syncFileBusy(writeFile)).toBe(true);
      timelines[i]?.inc(1);
    }
    expectBusy(resv, ALL_BUSY);
    writer.inc(1);
    expectBusy(resv, IDLE);
    expect(syncFileBusy(readFile)).toBe(false);
    expect(syncFileBusy(writeFile)).toBe(false);
  });
});

describe('IGT vgem_basic', () => {
  for (const before of [false, true]) {
    it(before ? 'dmabuf-fence-before' : 'dmabuf-fence', () => {
      const resv = new DmaResv();
      // "before": the fence exists before the buffer is exported; with one
      // reservation object shared by exporter and importer, this is the same state.
      const read = attach(resv, false);
      expect(dmaBufPoll(resv, POLLIN)).toBe(POLLIN);
      expect(dmaBufPoll(resv, POLLOUT)).toBe(0);
      read.signal();
      expect(dmaBufPoll(resv, POLLIN | POLLOUT)).toBe(POLLIN | POLLOUT);
      const write = attach(resv, true);
      expect(dmaBufPoll(resv, POLLIN | POLLOUT)).toBe(0);
      write.signal();
      expect(dmaBufPoll(resv, POLLIN | POLLOUT)).toBe(POLLIN | POLLOUT);
    });
  }
});

describe('export / import rules', () => {
  it('an idle buffer exports the signalled stub', () => {
    const file = exportSyncFile(new DmaResv(), 'write');
    expect(file.fence).toBe(getStub());
    expect(file.poll()).toBe(POLLIN);
  });

  it('BOOKKEEP fences never count for export or poll', () => {
    const resv = new DmaResv();
    resv.addFence(mockFence(), DmaResvUsage.BOOKKEEP);
    expectBusy(resv, IDLE);
  });

  it('KERNEL fences count for every access', () => {
    const resv = new DmaResv();
    resv.addFence(mockFence(), DmaResvUsage.KERNEL);
    expectBusy(resv, ALL_BUSY);
  });

  it('import adds each leaf separately and never a container', () => {
    const resv = new DmaResv();
    const [ta, tb] = [new SwSyncTimeline(), new SwSyncTimeline()];
    const merged = syncFileMerge('m', ta.createFence(1), tb.createFence(1));
    importSyncFile(resv, merged, 'write');
    expect(resv.getFences(DmaResvUsage.WRITE).map((f) => f.context)).toEqual([ta.context, tb.context]);
  });

  it('import promotes a BOOKKEEP fence but never removes existing ones', () => {
    const resv = new DmaResv();
    const timeline = new SwSyncTimeline();
    const file = timeline.createFence(5);
    resv.addFence(file.fence, DmaResvUsage.BOOKKEEP);
    const existing = attach(resv, true);
    importSyncFile(resv, file, 'read');
    expect([...resv.fences(DmaResvUsage.BOOKKEEP)]).toEqual([
      { fence: file.fence, usage: DmaResvUsage.READ },
      { fence: existing, usage: DmaResvUsage.WRITE },
    ]);
  });

  it('importing an earlier point of a timeline cannot hide a later pending one', () => {
    const resv = new DmaResv();
    const timeline = new SwSyncTimeline();
    importSyncFile(resv, timeline.createFence(10), 'write');
    importSyncFile(resv, timeline.createFence(2), 'write');
    timeline.inc(2);
    expect(dmabufBusy(resv, 'read')).toBe(true);
    timeline.inc(8);
    expect(dmabufBusy(resv, 'read')).toBe(false);
  });

  it('an imported signalled stub is harmless', () => {
    const resv = new DmaResv();
    const pending = attach(resv, true);
    importSyncFile(resv, exportSyncFile(new DmaResv(), 'write'), 'write');
    expect(resv.getFences(DmaResvUsage.WRITE)).toEqual([pending]);
  });

  it('flag validation: EINVAL for no direction, unknown bits, or a non-sync_file', () => {
    const resv = new DmaResv();
    for (const bad of [0, 4, DMA_BUF_SYNC_RW | 4, -1, 1.5]) {
      expectErrno(() => exportSyncFile(resv, bad), EINVAL);
      expectErrno(() => importSyncFile(resv, exportSyncFile(resv, 'read'), bad), EINVAL);
    }
    expect(exportSyncFile(resv, DMA_BUF_SYNC_READ).poll()).toBe(POLLIN);
    expectErrno(() => importSyncFile(resv, mockFence(), DMA_BUF_SYNC_WRITE), EINVAL);
  });

  it('poll without a reservation object reports POLLERR', () => {
    expect(dmaBufPoll(null, POLLIN)).toBe(POLLERR);
  });
});
