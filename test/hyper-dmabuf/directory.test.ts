/**
 * Gref directories, both formats, as pure functions over plain Uint32Arrays:
 * round trips up to each format's limit, exact byte layout, the error past
 * the limit, and refusal of every malformed page a hostile exporter could write.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeDirectory, directoryPageCount, encodeDirectory, formatMaxPages, LINKED_MAX_PAGES, MULTILEVEL_MAX_PAGES, walkDirectory,
} from '../../src/hyper-dmabuf/directory/index.ts';
import type { DirFormat } from '../../protocol/messages/dmabuf.ts';

/** Data refs 1000.. and directory refs 1..k, as an exporter would hand out. */
function refsFor(format: DirFormat, nPages: number): { data: Uint32Array; dir: Uint32Array } {
  const data = new Uint32Array(nPages).map((_, i) => 0x10_0000 + i * 7);
  const dir = new Uint32Array(directoryPageCount(format, nPages)).map((_, i) => i + 1);
  return { data, dir };
}

/** A pretend grant table: directory pages by ref. */
function table(dir: ArrayLike<number>, pages: Uint32Array[]): (ref: number) => Uint32Array {
  const byRef = new Map<number, Uint32Array>();
  pages.forEach((p, i) => byRef.set(dir[i]!, p));
  return (ref) => {
    const p = byRef.get(ref);
    if (!p) throw new Error(`no page granted as ${ref}`);
    return p;
  };
}

function roundTrip(format: DirFormat, nPages: number): void {
  const { data, dir } = refsFor(format, nPages);
  const pages = encodeDirectory(format, data, dir);
  expect(pages.length).toBe(dir.length);
  for (const p of pages) expect(p.length).toBe(1024);
  const out = decodeDirectory(format, dir[0]!, nPages, table(dir, pages));
  expect(Buffer.from(out.buffer).equals(Buffer.from(data.buffer))).toBe(true);
}

describe.each(['multilevel', 'linked'] as const)('%s directory', (format) => {
  it.each([1, 2, 1022, 1023, 1024, 1025, 2046, 2047, 2048, 2049, 8100])('round-trips %i pages', (n) => roundTrip(format, n));

  it('round-trips at the format limit and refuses one page more with ERR_BUFFER_TOO_LARGE', () => {
    const max = formatMaxPages(format);
    expect(max).toBe(1024 * 1024);
    roundTrip(format, max);
    expect(() => directoryPageCount(format, max + 1)).toThrow(expect.objectContaining({ code: 'ERR_BUFFER_TOO_LARGE' }));
    expect(() => walkDirectory(format, 1, max + 1)).toThrow(expect.objectContaining({ code: 'ERR_BUFFER_TOO_LARGE' }));
    expect(() => directoryPageCount(format, 0)).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }));
  });

  it('refuses reference 0 where a data reference is required', () => {
    const { data, dir } = refsFor(format, 3000);
    data[2999] = 0;
    const pages = encodeDirectory(format, data, dir);
    expect(() => decodeDirectory(format, dir[0]!, 3000, table(dir, pages))).toThrow(expect.objectContaining({ code: 'ERR_BAD_DIRECTORY' }));
  });

  it('refuses a non-zero unused slot', () => {
    const { data, dir } = refsFor(format, 5);
    const pages = encodeDirectory(format, data, dir);
    pages[pages.length - 1]![1023] = 77;
    expect(() => decodeDirectory(format, dir[0]!, 5, table(dir, pages))).toThrow(expect.objectContaining({ code: 'ERR_BAD_DIRECTORY' }));
  });

  it('refuses a directory whose page count disagrees with nents', () => {
    const { data, dir } = refsFor(format, 1000);
    const pages = encodeDirectory(format, data, dir);
    // The importer believes the buffer is larger than the directory describes.
    expect(() => decodeDirectory(format, dir[0]!, 3000, table(dir, pages))).toThrow(expect.objectContaining({ code: 'ERR_BAD_DIRECTORY' }));
  });

  it('refuses directory ref 0 and pages of the wrong size', () => {
    expect(() => walkDirectory(format, 0, 10)).toThrow(expect.objectContaining({ code: 'ERR_BAD_DIRECTORY' }));
    const walk = walkDirectory(format, 5, 10);
    expect(() => walk.supply([new Uint32Array(1023)])).toThrow(expect.objectContaining({ code: 'ERR_BAD_DIRECTORY' }));
  });
});

describe('multilevel layout', () => {
  it('is byte for byte: top page lists second-level refs, leaves list data refs, the rest is 0', () => {
    const data = new Uint32Array(1025).map((_, i) => 100 + i);
    const pages = encodeDirectory('multilevel', data, [7, 8, 9]);
    const bytes = (p: Uint32Array) => Buffer.from(p.buffer, p.byteOffset, p.byteLength);
    // Top: refs 8, 9 little-endian at offsets 0 and 4, then zeros.
    expect(bytes(pages[0]!).subarray(0, 12)).toEqual(Buffer.from([8, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0]));
    expect(pages[0]!.subarray(2).every((v) => v === 0)).toBe(true);
    expect(pages[1]![0]).toBe(100);
    expect(pages[1]![1023]).toBe(100 + 1023);
    expect(pages[2]![0]).toBe(100 + 1024);
    expect(pages[2]!.subarray(1).every((v) => v === 0)).toBe(true);
    // A whole walk takes exactly two rounds: top, then every leaf in one batch.
    const walk = walkDirectory('multilevel', 7, 1025);
    expect(walk.wanted).toEqual([7]);
    walk.supply([pages[0]!]);
    expect(walk.wanted).toEqual([8, 9]);
    walk.supply([pages[1]!, pages[2]!]);
    expect(walk.done).toBe(true);
    expect(walk.dirRefs).toEqual([7, 8, 9]);
  });

  it('holds 1024 x 1024 pages in 1025 directory pages', () => {
    expect(directoryPageCount('multilevel', MULTILEVEL_MAX_PAGES)).toBe(1025);
  });

  it('refuses a second-level ref repeated (two leaves on one page)', () => {
    const data = new Uint32Array(2048).map((_, i) => 100 + i);
    const pages = encodeDirectory('multilevel', data, [7, 8, 9]);
    pages[0]![1] = 8;
    expect(() => decodeDirectory('multilevel', 7, 2048, table([7, 8, 9], pages))).toThrow(/appears twice/);
  });
});

describe('linked layout', () => {
  it('is byte for byte: word 0 links the next page (0 ends), words 1..1023 are data refs', () => {
    const data = new Uint32Array(1024).map((_, i) => 100 + i);
    const pages = encodeDirectory('linked', data, [7, 8]);
    expect(pages[0]![0]).toBe(8);
    expect(pages[0]![1]).toBe(100);
    expect(pages[0]![1023]).toBe(100 + 1022);
    expect(pages[1]![0]).toBe(0);
    expect(pages[1]![1]).toBe(100 + 1023);
    expect(pages[1]!.subarray(2).every((v) => v === 0)).toBe(true);
  });

  it('needs ceil(n / 1023) pages: 1026 at 1024 x 1024 pages', () => {
    expect(LINKED_MAX_PAGES).toBe(1024 * 1024);
    expect(directoryPageCount('linked', 1023)).toBe(1);
    expect(directoryPageCount('linked', 1024)).toBe(2);
    expect(directoryPageCount('linked', LINKED_MAX_PAGES)).toBe(1026);
  });

  it('refuses a loop, an early end and a link past the end', () => {
    const data = new Uint32Array(3000).map((_, i) => 100 + i);
    const dir = [7, 8, 9];
    const loop = encodeDirectory('linked', data, dir);
    loop[1]![0] = 7;
    expect(() => decodeDirectory('linked', 7, 3000, table(dir, loop))).toThrow(/appears twice/);
    const early = encodeDirectory('linked', data, dir);
    early[1]![0] = 0;
    expect(() => decodeDirectory('linked', 7, 3000, table(dir, early))).toThrow(/list ends after 2 pages/);
    const past = encodeDirectory('linked', data, dir);
    past[2]![0] = 11;
    expect(() => decodeDirectory('linked', 7, 3000, table(dir, past))).toThrow(/must end/);
  });
});
