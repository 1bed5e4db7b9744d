/** GrantTableView.publishMany (native/grant-publish.c): Xen's entry layout, word by word, and its bounds. */
import { describe, expect, it } from 'vitest';
import { GTF } from '../../protocol/grant-abi.ts';
import { GrantTableView } from '../../src/memory/grant-table-view.ts';
import { nativeMem } from '../../src/memory/native.ts';

describe('publishing grants', () => {
  it('writes domid and frame, then the flags, into exactly the entries named', () => {
    const buf = new ArrayBuffer(4096);
    const view = new GrantTableView(buf);
    const words = new Int32Array(buf);
    view.publishMany(Uint32Array.of(8, 9, 40), 7, Uint32Array.of(100, 0xfffffffe, 3), false);
    view.publishMany(Uint32Array.of(41), 0xffff, [5], true);
    expect(view.loadHeader(8)).toMatchObject({ flags: GTF.permit_access, domid: 7 });
    expect([view.loadFrame(8), view.loadFrame(9), view.loadFrame(40)]).toEqual([100, 0xfffffffe, 3]);
    expect(view.loadHeader(41)).toMatchObject({ flags: GTF.permit_access | GTF.readonly, domid: 0xffff });
    expect(view.loadFrame(41)).toBe(5);
    // Nothing else was touched.
    const touched = new Set([8, 9, 40, 41].flatMap((r) => [r * 2, r * 2 + 1]));
    expect(words.filter((w, i) => !touched.has(i) && w !== 0)).toHaveLength(0);
    expect(view.census()).toEqual({ inUse: 4, busy: 0 });
  });

  it('refuses a ref beyond the table before writing anything', () => {
    const buf = new ArrayBuffer(4096);
    const words = new Int32Array(buf);
    expect(() => nativeMem.grantPublish(words, Uint32Array.of(1, 512), Uint32Array.of(1, 2), 0, 1)).toThrow(/beyond the table/);
    expect(words.every((w) => w === 0)).toBe(true);
    expect(() => nativeMem.grantPublish(words, Uint32Array.of(1), new Uint32Array(2), 0, 1)).toThrow(/one length/);
  });
});
