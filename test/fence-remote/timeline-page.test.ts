import { closeSync, ftruncateSync, openSync, unlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FENCE_PAGE_SLOTS } from '../../protocol/messages/fence.ts';
import { nativeMem } from '../../src/memory/native.ts';
import { PageState, TimelinePageError, TimelinePageReader, TimelinePageWriter } from '../../src/fence-remote/timeline-page.ts';

describe('timeline page', () => {
  it('announces 252 slots of 16 bytes after a 64-byte header', () => {
    expect(FENCE_PAGE_SLOTS).toBe(252);
  });

  it('is refused until the owner has written the header, and read back field by field after', () => {
    const buf = new ArrayBuffer(4096);
    expect(() => new TimelinePageReader(buf)).toThrow(TimelinePageError);
    const w = new TimelinePageWriter(buf, 0);
    w.init(5);
    const r = new TimelinePageReader(buf);
    expect(r.slotCount).toBe(252);
    expect(r.seqno()).toBe(5);
    expect(r.state()).toBe(PageState.Live);
    w.assignSlot(7, 2 ** 40 + 3);
    expect(r.readSlot(7)).toEqual({ tag: 2 ** 40 + 3, status: 0 });
    w.setSlotStatus(7, -5);
    w.publishSeqno(2 ** 40 + 3);
    expect(r.seqno()).toBe(2 ** 40 + 3);
    expect(r.advances()).toBe(1);
    expect(r.readSlot(7)).toEqual({ tag: 2 ** 40 + 3, status: -5 });
    w.clearSlot(7);
    expect(r.readSlot(7)).toEqual({ tag: 0, status: 0 });
    w.close(-2);
    expect(r.state()).toBe(PageState.Closed);
    expect(r.closeStatus()).toBe(-2);
    expect(() => r.readSlot(252)).toThrow(RangeError);
  });

  it('refuses a wrong magic, version or slot count, and an uninitialised state', () => {
    const buf = new ArrayBuffer(4096);
    const words = new Int32Array(buf);
    new TimelinePageWriter(buf, 0).init();
    words[0] = 0x12345678;
    expect(() => new TimelinePageReader(buf)).toThrow(/magic/);
    new TimelinePageWriter(buf, 0).init();
    words[1] = 2 | (252 << 16);
    expect(() => new TimelinePageReader(buf)).toThrow(/version/);
    words[1] = 1 | (253 << 16);
    expect(() => new TimelinePageReader(buf)).toThrow(/slot count/);
    words[1] = 1 | (252 << 16);
    words[2] = 0;
    expect(() => new TimelinePageReader(buf)).toThrow(/state/);
  });

  it('clamps a seqno beyond 2^53-1 instead of losing precision', () => {
    const buf = new ArrayBuffer(4096);
    new TimelinePageWriter(buf, 0).init();
    new BigUint64Array(buf)[2] = 2n ** 63n;
    expect(new TimelinePageReader(buf).seqno()).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('is read with Atomics through a PROT_READ mapping of another mapping\'s page (no fault)', () => {
    const path = `/dev/shm/hdmabuf-fence-page-test-${process.pid}`;
    const fd = openSync(path, 'w+');
    try {
      ftruncateSync(fd, 3 * 4096);
      const rw = nativeMem.mapRange(fd, 0, 3, true);
      const ro = nativeMem.mapPages(fd, Uint32Array.of(2), false);
      try {
        const w = new TimelinePageWriter(rw, 2 * 4096);
        w.init(0);
        w.assignSlot(0, 9);
        const r = new TimelinePageReader(ro);
        w.setSlotStatus(0, 1);
        w.publishSeqno(9);
        expect(r.seqno()).toBe(9);
        expect(r.readSlot(0)).toEqual({ tag: 9, status: 1 });
      } finally {
        nativeMem.unmap(ro);
        nativeMem.unmap(rw);
      }
    } finally {
      closeSync(fd);
      unlinkSync(path);
    }
  });
});
