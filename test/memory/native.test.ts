/**
 * Tests of the N-API addon (native/mem.c) through src/memory/native.ts.
 * Guest RAM stand-ins are sparse files in /dev/shm, removed after each test.
 * Things that must not happen in the vitest worker (a write fault, exhausting
 * vm.max_map_count, forced GC) run in a child: fixtures/native-child.ts.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, readSync, unlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { nativeMem, PAGE_SIZE, type NativeErrorCode } from '../../src/memory/native.ts';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const childScript = fileURLToPath(new URL('./fixtures/native-child.ts', import.meta.url));

const temps: { path: string; fds: number[] }[] = [];
afterEach(() => {
  for (const t of temps.splice(0)) {
    for (const fd of t.fds) closeSync(fd);
    unlinkSync(t.path);
  }
});

let seq = 0;
/** A sparse tmpfs file of nPages pages; returns its path and an O_RDWR fd. */
function tempFile(nPages: number): { path: string; fd: number; openReadOnly(): number } {
  const path = `/dev/shm/hdmabuf-native-test-${process.pid}-${seq++}`;
  const fd = openSync(path, 'w+', 0o600);
  const t = { path, fds: [fd] };
  temps.push(t);
  ftruncateSync(fd, nPages * PAGE_SIZE);
  return {
    path,
    fd,
    openReadOnly() {
      const ro = openSync(path, 'r');
      t.fds.push(ro);
      return ro;
    },
  };
}

/** Fills each page p of a writable view of the whole file with a pattern of p. */
function stampPages(fd: number, nPages: number): void {
  const buf = nativeMem.mapRange(fd, 0, nPages, true);
  const words = new Uint32Array(buf);
  for (let p = 0; p < nPages; p++) words.fill(p * 0x10001 + 7, (p * PAGE_SIZE) / 4, ((p + 1) * PAGE_SIZE) / 4);
  expect(nativeMem.unmap(buf)).toBe(true);
}

/** Asserts that page k of view holds the pattern of file page pages[k], start to end. */
function expectPages(view: ArrayBuffer, pages: ArrayLike<number>): void {
  expect(view.byteLength).toBe(pages.length * PAGE_SIZE);
  const words = new Uint32Array(view);
  for (let k = 0; k < pages.length; k++) {
    const want = pages[k]! * 0x10001 + 7;
    const first = words[(k * PAGE_SIZE) / 4];
    const last = words[((k + 1) * PAGE_SIZE) / 4 - 1];
    if (first !== want || last !== want) expect({ k, first, last }).toEqual({ k, first: want, last: want });
  }
}

function errorCode(fn: () => unknown): NativeErrorCode | string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(Error);
    return String((e as { code?: unknown }).code);
  }
  return 'did not throw';
}

/** Runs the child fixture with core dumps off; returns spawnSync's result. */
function runChild(args: string[], nodeFlags: string[] = []) {
  return spawnSync(
    '/bin/sh',
    ['-c', 'ulimit -c 0; exec "$0" "$@"', process.execPath, ...nodeFlags, '--import', 'tsx', childScript, ...args],
    { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 },
  );
}

describe('countRuns', () => {
  it('coalesces ascending consecutive page numbers only', () => {
    expect(nativeMem.countRuns(new Uint32Array([5]))).toBe(1);
    expect(nativeMem.countRuns(new Uint32Array([0, 1, 2, 3]))).toBe(1);
    expect(nativeMem.countRuns(new Uint32Array([0, 1, 5, 6, 7, 2]))).toBe(3);
    expect(nativeMem.countRuns(new Uint32Array([3, 2, 1, 0]))).toBe(4); // reversed: no runs
    expect(nativeMem.countRuns(new Uint32Array([4, 4, 5]))).toBe(2); // repeat is a new run
    expect(nativeMem.countRuns(new Uint32Array([0xffffffff, 0]))).toBe(2); // no wrap-around
    expect(nativeMem.countRuns(new Uint32Array(1000).map((_, i) => 2 * i))).toBe(1000);
  });

  it('rejects an empty or non-Uint32Array argument', () => {
    expect(errorCode(() => nativeMem.countRuns(new Uint32Array(0)))).toBe('ERR_BAD_ARG');
    expect(errorCode(() => nativeMem.countRuns([1, 2] as unknown as Uint32Array))).toBe('ERR_BAD_ARG');
    expect(errorCode(() => nativeMem.countRuns(new Int32Array([1]) as unknown as Uint32Array))).toBe('ERR_BAD_ARG');
  });
});

describe('nativeMem mappings', () => {
  it('mapRange: writes through one mapping are seen through another and in the file', { timeout: 10_000 }, () => {
    const base = nativeMem.liveMappings();
    const f = tempFile(8);
    const w = nativeMem.mapRange(f.fd, 2, 3, true);
    const r = nativeMem.mapRange(f.openReadOnly(), 0, 8, false);
    expect(w.byteLength).toBe(3 * PAGE_SIZE);
    expect(nativeMem.liveMappings()).toBe(base + 2);
    const wb = new Uint8Array(w);
    for (let i = 0; i < wb.length; i++) wb[i] = (i * 31 + 5) & 0xff;
    const rb = new Uint8Array(r, 2 * PAGE_SIZE, 3 * PAGE_SIZE);
    expect(Buffer.from(rb).equals(Buffer.from(wb))).toBe(true);
    expect(new Uint8Array(r, 0, 2 * PAGE_SIZE).every((b) => b === 0)).toBe(true);
    const fromFile = Buffer.alloc(PAGE_SIZE);
    readSync(f.fd, fromFile, 0, PAGE_SIZE, 4 * PAGE_SIZE);
    expect(fromFile.equals(Buffer.from(wb.subarray(2 * PAGE_SIZE)))).toBe(true);
    // Atomics work on the shared mapping and are seen through the other one.
    const i32 = new Int32Array(w);
    const old = i32[0]!;
    expect(Atomics.compareExchange(i32, 0, old, 42)).toBe(old);
    expect(Atomics.load(new Int32Array(r, 2 * PAGE_SIZE, 1), 0)).toBe(42);
    expect(nativeMem.unmap(w)).toBe(true);
    expect(nativeMem.unmap(r)).toBe(true);
    expect(nativeMem.liveMappings()).toBe(base);
  });

  it('mapPages: scattered pages in order form one contiguous view, in both directions', { timeout: 10_000 }, () => {
    const f = tempFile(16);
    stampPages(f.fd, 16);
    const pages = new Uint32Array([7, 2, 9, 10, 11, 3, 15, 0]);
    expect(nativeMem.countRuns(pages)).toBe(6);
    const ro = nativeMem.mapPages(f.openReadOnly(), pages, false);
    expectPages(ro, pages);

    // Write through a writable vmap; the writes land in the right file pages.
    const rw = nativeMem.mapPages(f.fd, pages, true);
    const bytes = new Uint8Array(rw);
    pages.forEach((p, k) => bytes.fill(0xc0 + k, k * PAGE_SIZE, (k + 1) * PAGE_SIZE));
    const whole = new Uint8Array(nativeMem.mapRange(f.fd, 0, 16, false));
    pages.forEach((p, k) => {
      expect(whole[p * PAGE_SIZE]).toBe(0xc0 + k);
      expect(whole[(p + 1) * PAGE_SIZE - 1]).toBe(0xc0 + k);
      expect(new Uint8Array(ro)[k * PAGE_SIZE + 100]).toBe(0xc0 + k); // other vmap sees it too
    });
    expect(whole[PAGE_SIZE]).toBe(1 * 0x10001 + 7 & 0xff); // page 1 untouched
    for (const b of [ro, rw, whole.buffer as ArrayBuffer]) expect(nativeMem.unmap(b)).toBe(true);
  });

  it('mapPages: reversed page order, and a single run', { timeout: 10_000 }, () => {
    const f = tempFile(64);
    stampPages(f.fd, 64);
    const reversed = new Uint32Array(64).map((_, i) => 63 - i);
    expect(nativeMem.countRuns(reversed)).toBe(64);
    const rev = nativeMem.mapPages(f.fd, reversed, false);
    expectPages(rev, reversed);
    const run = new Uint32Array([20, 21, 22, 23]);
    expect(nativeMem.countRuns(run)).toBe(1);
    const one = nativeMem.mapPages(f.fd, run, false);
    expectPages(one, run);
    expect(nativeMem.unmap(rev)).toBe(true);
    expect(nativeMem.unmap(one)).toBe(true);
  });

  it('mapPages with more than 1024 runs checks the VMA budget and then maps', { timeout: 20_000 }, () => {
    const f = tempFile(4096);
    stampPages(f.fd, 4096);
    const pages = new Uint32Array(2000).map((_, i) => 2 * i + 1);
    const before = nativeMem.currentMapCount();
    const view = nativeMem.mapPages(f.fd, pages, false);
    expect(nativeMem.currentMapCount() - before).toBeGreaterThanOrEqual(1990);
    expectPages(view, pages);
    expect(nativeMem.unmap(view)).toBe(true);
    expect(Math.abs(nativeMem.currentMapCount() - before)).toBeLessThan(16);
  });
});

describe('unmap', () => {
  it('detaches at once, restores liveMappings, and is false the second time', { timeout: 10_000 }, () => {
    const base = nativeMem.liveMappings();
    const f = tempFile(4);
    const a = nativeMem.mapRange(f.fd, 0, 4, true);
    const b = nativeMem.mapPages(f.fd, new Uint32Array([3, 1]), false);
    const aView = new Uint8Array(a);
    expect(nativeMem.liveMappings()).toBe(base + 2);
    expect(nativeMem.unmap(a)).toBe(true);
    expect(a.byteLength).toBe(0);
    expect(aView.length).toBe(0); // views over it are empty, not dangling
    expect(aView[0]).toBeUndefined();
    expect(nativeMem.liveMappings()).toBe(base + 1);
    expect(nativeMem.unmap(a)).toBe(false);
    expect(nativeMem.unmap(b)).toBe(true);
    expect(b.byteLength).toBe(0);
    expect(nativeMem.unmap(b)).toBe(false);
    expect(nativeMem.liveMappings()).toBe(base);
  });

  it('is false for an ArrayBuffer the addon did not map; ERR_BAD_ARG for a non-ArrayBuffer', () => {
    expect(nativeMem.unmap(new ArrayBuffer(PAGE_SIZE))).toBe(false);
    expect(nativeMem.unmap(new ArrayBuffer(0))).toBe(false);
    const f = tempFile(1);
    const a = nativeMem.mapRange(f.fd, 0, 1, false);
    expect(errorCode(() => nativeMem.unmap(new Uint8Array(a) as unknown as ArrayBuffer))).toBe('ERR_BAD_ARG');
    expect(errorCode(() => nativeMem.unmap(new SharedArrayBuffer(8) as unknown as ArrayBuffer))).toBe('ERR_BAD_ARG');
    expect(nativeMem.unmap(a)).toBe(true);
  });
});

describe('views and the garbage collector', () => {
  it('a view is not counted as memory V8 could free: mapping 33 MB leaves the external-memory count as it was', { timeout: 10_000 }, () => {
    // A counted 33 MB view forced a young collection at every later ArrayBuffer allocation and a full
    // mark-compact per share in the importer (native/view.cc); the file's pages are not V8's to free.
    const pages = 8100;
    const f = tempFile(pages);
    const before = process.memoryUsage().external;
    const view = nativeMem.mapRange(f.fd, 0, pages, false);
    const grown = process.memoryUsage().external - before;
    expect(view.byteLength).toBe(pages * PAGE_SIZE);
    expect(grown).toBeLessThan(1024 * 1024);
    expect(nativeMem.unmap(view)).toBe(true);
    expect(process.memoryUsage().external - before).toBeLessThan(1024 * 1024);
  });

  it('only unmap() detaches a view: a transfer copies it and leaves it mapped', { timeout: 10_000 }, () => {
    const f = tempFile(2);
    stampPages(f.fd, 2);
    const view = nativeMem.mapPages(f.fd, new Uint32Array([1, 0]), false);
    // Its range is released when the ArrayBuffer object is collected: memory moved to another
    // owner would outlive it.
    const copy = structuredClone(view, { transfer: [view] });
    expectPages(view, [1, 0]);
    expectPages(copy, [1, 0]);
    const { port1, port2 } = new MessageChannel();
    port1.postMessage(view, [view]);
    port1.close();
    port2.close();
    expectPages(view, [1, 0]);
    expect(nativeMem.unmap(view)).toBe(true);
    expect(view.byteLength).toBe(0);
  });
});

describe('errors', () => {
  it('rejects bad arguments with ERR_BAD_ARG and maps nothing', () => {
    const base = nativeMem.liveMappings();
    const f = tempFile(4);
    const closed = openSync(f.path, 'r');
    closeSync(closed);
    const bad: [string, () => unknown][] = [
      ['fd -1', () => nativeMem.mapRange(-1, 0, 1, false)],
      ['fd 1.5', () => nativeMem.mapRange(1.5, 0, 1, false)],
      ['fd string', () => nativeMem.mapRange('3' as unknown as number, 0, 1, false)],
      ['closed fd', () => nativeMem.mapRange(closed, 0, 1, false)],
      ['firstPage -1', () => nativeMem.mapRange(f.fd, -1, 1, false)],
      ['firstPage NaN', () => nativeMem.mapRange(f.fd, NaN, 1, false)],
      ['nPages 0', () => nativeMem.mapRange(f.fd, 0, 0, false)],
      ['nPages 1.5', () => nativeMem.mapRange(f.fd, 0, 1.5, false)],
      ['firstPage 2^32', () => nativeMem.mapRange(f.fd, 2 ** 32, 1, false)],
      ['range past 2^32 pages', () => nativeMem.mapRange(f.fd, 2 ** 32 - 1, 2, false)],
      ['range past end of file', () => nativeMem.mapRange(f.fd, 3, 2, false)],
      ['writable not boolean', () => nativeMem.mapRange(f.fd, 0, 1, 1 as unknown as boolean)],
      ['missing arguments', () => (nativeMem.mapRange as (...a: unknown[]) => unknown)(f.fd)],
      ['mapPages fd -1', () => nativeMem.mapPages(-1, new Uint32Array([0]), false)],
      ['mapPages empty', () => nativeMem.mapPages(f.fd, new Uint32Array(0), false)],
      ['mapPages plain array', () => nativeMem.mapPages(f.fd, [0, 1] as unknown as Uint32Array, false)],
      ['mapPages Float64Array', () => nativeMem.mapPages(f.fd, new Float64Array([0]) as unknown as Uint32Array, false)],
      ['mapPages page past end of file', () => nativeMem.mapPages(f.fd, new Uint32Array([0, 4]), false)],
      ['mapPages closed fd', () => nativeMem.mapPages(closed, new Uint32Array([0]), false)],
      ['mapPages writable not boolean', () => nativeMem.mapPages(f.fd, new Uint32Array([0]), undefined as unknown as boolean)],
    ];
    for (const [name, fn] of bad) expect([name, errorCode(fn)]).toEqual([name, 'ERR_BAD_ARG']);
    expect(nativeMem.liveMappings()).toBe(base);
  });

  it('a failing mmap throws ERR_MMAP and leaves no mapping (writable map of a read-only fd)', () => {
    const base = nativeMem.liveMappings();
    const f = tempFile(8);
    const ro = f.openReadOnly();
    const maps = nativeMem.currentMapCount();
    const pages = new Uint32Array([5, 1, 2]);
    // 500 rounds: a leaked mapping per call would add >= 500 VMAs; V8's own
    // heap growth in the meantime adds a handful at most.
    for (let i = 0; i < 500; i++) {
      expect(errorCode(() => nativeMem.mapRange(ro, 0, 1, true))).toBe('ERR_MMAP');
      // mapPages reserves first, so this exercises the undo of the reservation.
      expect(errorCode(() => nativeMem.mapPages(ro, pages, true))).toBe('ERR_MMAP');
    }
    expect(nativeMem.liveMappings()).toBe(base);
    expect(nativeMem.currentMapCount() - maps).toBeLessThan(50);
  });

  it('ERR_MAP_LIMIT before mapping when a vmap would exceed vm.max_map_count', { timeout: 20_000 }, () => {
    const max = nativeMem.maxMapCount();
    expect(max).toBeGreaterThan(0);
    const cur = nativeMem.currentMapCount();
    expect(cur).toBeGreaterThan(0);
    expect(cur).toBeLessThan(max);
    const n = Math.max(70_000, max + 1_000); // alternating pages: n runs
    if (n > 4_000_000) return; // vm.max_map_count raised very high: cannot provoke cheaply
    const f = tempFile(2 * n); // sparse: costs nothing
    const pages = new Uint32Array(n).map((_, i) => 2 * i);
    expect(nativeMem.countRuns(pages)).toBe(n);
    const live = nativeMem.liveMappings();
    let err: unknown;
    try {
      nativeMem.mapPages(f.fd, pages, false);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: string }).code).toBe('ERR_MAP_LIMIT');
    expect((err as Error).message).toMatch(
      new RegExp(`^vmap of ${n} pages needs ${n} mappings; this process has \\d+ of max ${max} \\(vm\\.max_map_count\\)$`),
    );
    expect(nativeMem.liveMappings()).toBe(live);
    expect(nativeMem.currentMapCount()).toBeLessThan(cur + 16); // nothing mapped (allowing for V8's own)
  });
});

describe('in a child process', () => {
  it('a write through a read-only mapping faults in hardware (SIGSEGV/SIGBUS)', { timeout: 60_000 }, () => {
    const f = tempFile(1);
    const r = runChild(['write', f.path, 'ro']);
    expect(r.error).toBeUndefined();
    expect(r.stdout).toBe('mapped 0\n'); // mapped fine, died at the write
    expect(['SIGSEGV', 'SIGBUS']).toContain(r.signal);
    expect(r.status).toBeNull();
    const b = Buffer.alloc(1);
    readSync(f.fd, b, 0, 1, 0);
    expect(b[0]).toBe(0);
  });

  it('the same write through a read-write mapping succeeds (control)', { timeout: 60_000 }, () => {
    const f = tempFile(1);
    const r = runChild(['write', f.path, 'rw']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('mapped 0\nwrote\n');
    expect(r.status).toBe(0);
    const b = Buffer.alloc(1);
    readSync(f.fd, b, 0, 1, 0);
    expect(b[0]).toBe(0xab);
  });

  it('a native write in flight at unmap() faults in the reservation and never reaches the next mapping', { timeout: 120_000 }, () => {
    const pages = 16384; // 64 MiB: the fill is far from done when unmap() runs
    // Which comes first after unmap(), the child's next mapping or the fill thread's next store, is up to
    // the scheduler: a child whose fill faulted before "mapped next" proved nothing about reuse, so another
    // child runs, at most ATTEMPTS in all. Every child must fault and leave its next file untouched, and at
    // least one must have faulted with the next mapping in place.
    const ATTEMPTS = 6;
    let witnessed = 0;
    for (let attempt = 1; attempt <= ATTEMPTS && witnessed === 0; attempt++) {
      const a = tempFile(pages);
      const b = tempFile(pages);
      const r = runChild(['stale-write', a.path, b.path]);
      expect(r.error).toBeUndefined();
      // Mapped the next file (or faulted before it), then the stale write faulted: a fill that completed would print "fill ended".
      expect(['', `mapped next ${pages * PAGE_SIZE}\n`]).toContain(r.stdout);
      expect(['SIGSEGV', 'SIGBUS']).toContain(r.signal);
      // Not one byte of the next mapping's file was written.
      const chunk = Buffer.alloc(1 << 20);
      let nonZero = 0;
      for (let off = 0; off < pages * PAGE_SIZE; off += chunk.length) {
        readSync(b.fd, chunk, 0, chunk.length, off);
        for (let i = 0; i < chunk.length; i += 8) if (chunk.readBigUInt64LE(i) !== 0n) nonZero++;
      }
      expect(nonZero, `attempt ${attempt}`).toBe(0);
      if (r.stdout !== '') witnessed++;
    }
    expect(witnessed, `a child whose stale write faulted after the next mapping was made, in ${ATTEMPTS} attempts`).toBe(1);
  });

  it('a vmap failing mid-way (VMA budget exhausted) leaves nothing mapped', { timeout: 60_000 }, () => {
    const f = tempFile(4096);
    const r = runChild(['exhaust', f.path]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const rep = JSON.parse(r.stdout) as Record<string, number | string>;
    expect(rep.runs).toBeGreaterThan(rep.free as number); // the vmap could not fit
    expect(rep.runs).toBeLessThanOrEqual(1024); // so the kernel, not the pre-check, refused
    expect(rep.code).toBe('ERR_MMAP');
    expect(rep.message).toMatch(/Cannot allocate memory/);
    expect(rep.afterMaps).toBe(rep.beforeMaps);
    expect(rep.afterLive).toBe(rep.beforeLive);
    expect(rep.unmapped).toBe(rep.filled);
    expect(rep.liveAtEnd).toBe(0);
  });

  it('finalizers unmap dropped views and never touch remapped addresses', { timeout: 60_000 }, () => {
    const f = tempFile(4);
    const r = runChild(['gc', f.path], ['--expose-gc']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ afterDrop: 0, base: 0, sum: 100, liveKept: 50, liveAtEnd: 0 });
  });
});
