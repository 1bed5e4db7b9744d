import { describe, expect, it } from 'vitest';
import { SlotTable } from '../../src/fence-remote/slot-table.ts';

describe('slot table', () => {
  it('hands out the lowest free slot and reuses a slot only once nobody holds it', () => {
    const t = new SlotTable<string>(3);
    expect([t.assign('a'), t.assign('b'), t.assign('c'), t.assign('d')]).toEqual([0, 1, 2, -1]);
    t.hold(1, 7);
    t.hold(1, 7);
    t.hold(1, 8);
    expect(t.holds).toBe(3);
    expect(t.release(7, [1])).toEqual({ released: 1, ignored: 0, unheld: [] });
    expect(t.release(7, [1, 1, 2])).toEqual({ released: 1, ignored: 2, unheld: [] });
    expect(() => t.free(1)).toThrow(/held/);
    expect(t.release(8, [1])).toEqual({ released: 1, ignored: 0, unheld: [{ slot: 1, point: 'b' }] });
    t.free(1);
    t.free(0);
    expect(t.assign('e')).toBe(0);
    expect(t.used).toBe(2);
  });

  it('drops every count of a peer at once', () => {
    const t = new SlotTable<number>(4);
    for (let i = 0; i < 3; i++) { t.assign(i); t.hold(i, 5); }
    t.hold(0, 6);
    t.hold(2, 5);
    const r = t.dropPeer(5);
    expect(r.released).toBe(4);
    expect(r.unheld.map((u) => u.slot)).toEqual([1, 2]);
    expect(t.holders()).toEqual(new Set([6]));
  });
});
