/**
 * Error slots of one timeline page, owner side: which point each slot is
 * assigned to, and how many counts each observer holds on it.
 *
 * A slot is assigned to a pending point when the point is first exported,
 * and every exported reference adds one count for its receiver. The slot
 * can be reused only once no observer holds a count: an observer returns
 * its counts after it has read the point's final status, so a slot is
 * never reassigned under a reader. Counts (not a set of holders) make a
 * release that crosses a later export of the same point harmless.
 */

/** One assigned slot. */
export interface SlotEntry<P> {
  /** The point it is assigned to. */
  readonly point: P;
  /** Counts held, by observer domain. */
  readonly holds: Map<number, number>;
}

/** Result of returning counts. */
export interface ReleaseResult<P> {
  /** Counts that were held and are now returned. */
  released: number;
  /** Entries naming a count the observer did not hold (ignored). */
  ignored: number;
  /** Slots that now have no holder, with the point they were assigned to. */
  unheld: Array<{ slot: number; point: P }>;
}

/** The slot table of one timeline. */
export class SlotTable<P> {
  readonly size: number;
  readonly #entries: Array<SlotEntry<P> | undefined>;
  // Free slots, lowest last so pop() hands out the lowest index first.
  readonly #free: number[];

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`slot table size ${size}`);
    this.size = size;
    this.#entries = new Array<SlotEntry<P> | undefined>(size).fill(undefined);
    this.#free = Array.from({ length: size }, (_, i) => size - 1 - i);
  }

  /** Slots assigned now. */
  get used(): number {
    return this.size - this.#free.length;
  }

  /** Counts held now, by all observers. */
  get holds(): number {
    let n = 0;
    for (const e of this.#entries) if (e) for (const c of e.holds.values()) n += c;
    return n;
  }

  /** The entry of a slot, if assigned. */
  entry(slot: number): SlotEntry<P> | undefined {
    return this.#entries[slot];
  }

  /** Assigns the lowest free slot to `point`; -1 when none is free. */
  assign(point: P): number {
    const slot = this.#free.pop();
    if (slot === undefined) return -1;
    this.#entries[slot] = { point, holds: new Map() };
    return slot;
  }

  /** Adds one count of `peer` on an assigned slot. */
  hold(slot: number, peer: number): void {
    const e = this.#entries[slot];
    if (!e) throw new RangeError(`slot ${slot} is not assigned`);
    e.holds.set(peer, (e.holds.get(peer) ?? 0) + 1);
  }

  /** True if anyone holds a count on the slot. */
  isHeld(slot: number): boolean {
    return (this.#entries[slot]?.holds.size ?? 0) > 0;
  }

  /** Returns one count of `peer` per entry of `slots`. */
  release(peer: number, slots: Iterable<number>): ReleaseResult<P> {
    const out: ReleaseResult<P> = { released: 0, ignored: 0, unheld: [] };
    for (const slot of slots) {
      const e = this.#entries[slot];
      const held = e?.holds.get(peer) ?? 0;
      if (!e || held === 0) { out.ignored++; continue; }
      if (held === 1) e.holds.delete(peer); else e.holds.set(peer, held - 1);
      out.released++;
      if (e.holds.size === 0) out.unheld.push({ slot, point: e.point });
    }
    return out;
  }

  /** Drops every count of `peer` (it died or the share ended). */
  dropPeer(peer: number): ReleaseResult<P> {
    const out: ReleaseResult<P> = { released: 0, ignored: 0, unheld: [] };
    this.#entries.forEach((e, slot) => {
      const held = e?.holds.get(peer);
      if (!e || held === undefined) return;
      e.holds.delete(peer);
      out.released += held;
      if (e.holds.size === 0) out.unheld.push({ slot, point: e.point });
    });
    return out;
  }

  /** Unassigns a slot that nobody holds. */
  free(slot: number): void {
    const e = this.#entries[slot];
    if (!e) throw new RangeError(`slot ${slot} is not assigned`);
    if (e.holds.size > 0) throw new RangeError(`slot ${slot} is still held`);
    this.#entries[slot] = undefined;
    this.#free.push(slot);
    // Keep the lowest free slot on top (tables are small: 252 entries).
    this.#free.sort((a, b) => b - a);
  }

  /** Observers holding at least one count on some slot. */
  holders(): Set<number> {
    const out = new Set<number>();
    for (const e of this.#entries) if (e) for (const p of e.holds.keys()) out.add(p);
    return out;
  }
}
