/**
 * Maptrack: the mappings one domain holds of other domains' grants (Xen's
 * per-domain maptrack table). A handle names one entry; the mapping domain
 * presents it to unmap.
 *
 * Handle layout (u32):
 *
 *   bit 31        20 19                  0
 *       +-----------+--------------------+
 *       | generation|     slot index     |
 *       +-----------+--------------------+
 *
 * The generation (1..4095) changes every time a slot is freed, so a stale
 * handle (already unmapped, its slot since reused) is refused with
 * GNTST_bad_handle instead of unmapping a newer mapping; Xen checks the
 * same thing only partly ("unstable handle", XSA-228). Handle 0 and
 * 0xffffffff (INVALID_GRANT_HANDLE) are never issued.
 *
 * Storage is structure-of-arrays over typed arrays that double on demand up
 * to the limit; free slots form a singly linked list.
 */

const INDEX_BITS = 20;
const INDEX_MASK = (1 << INDEX_BITS) - 1;
const GEN_MAX = 0xfff;
const INITIAL_SLOTS = 1024;

/** Entry flags. */
const LIVE = 1;
const WRITABLE = 2;

/** The maptrack of one mapping domain. */
export class Maptrack {
  /** Most live entries (GNTST_no_device_space beyond). */
  readonly limit: number;
  /** Live entries. */
  live = 0;
  private granter: Uint16Array;
  private ref: Uint32Array;
  private flags: Uint8Array;
  private gen: Uint16Array;
  private next: Int32Array;
  /** Slots ever used (slots below are either live or on the free list). */
  private used = 0;
  private freeHead = -1;

  constructor(limit: number) {
    this.limit = limit;
    const n = Math.min(INITIAL_SLOTS, limit);
    this.granter = new Uint16Array(n);
    this.ref = new Uint32Array(n);
    this.flags = new Uint8Array(n);
    this.gen = new Uint16Array(n).fill(1);
    this.next = new Int32Array(n);
  }

  /** True when no entry can be allocated. */
  get full(): boolean {
    return this.live >= this.limit;
  }

  /** Records a mapping; the caller has checked `full`. Returns its handle. */
  alloc(granter: number, ref: number, writable: boolean): number {
    let slot = this.freeHead;
    if (slot >= 0) {
      this.freeHead = this.next[slot]!;
    } else {
      if (this.used === this.flags.length) this.grow();
      slot = this.used++;
    }
    this.granter[slot] = granter;
    this.ref[slot] = ref;
    this.flags[slot] = writable ? LIVE | WRITABLE : LIVE;
    this.live++;
    return ((this.gen[slot]! << INDEX_BITS) | slot) >>> 0;
  }

  /** The slot of a live handle, or -1 for a handle never issued, already released, or stale. */
  lookup(handle: number): number {
    const slot = handle & INDEX_MASK;
    if (slot >= this.used) return -1;
    if ((this.flags[slot]! & LIVE) === 0) return -1;
    if (this.gen[slot] !== handle >>> INDEX_BITS) return -1;
    return slot;
  }

  /** Granting domain of a live slot. */
  granterOf(slot: number): number {
    return this.granter[slot]!;
  }

  /** Grant reference of a live slot. */
  refOf(slot: number): number {
    return this.ref[slot]!;
  }

  /** True if the live slot is a writable mapping (the flags recorded at map time, XSA-234). */
  isWritable(slot: number): boolean {
    return (this.flags[slot]! & WRITABLE) !== 0;
  }

  /** Frees a live slot; its handle becomes stale. */
  free(slot: number): void {
    this.flags[slot] = 0;
    const g = this.gen[slot]!;
    this.gen[slot] = g >= GEN_MAX ? 1 : g + 1;
    this.next[slot] = this.freeHead;
    this.freeHead = slot;
    this.live--;
  }

  /** Slots that are live now, in slot order (a snapshot: freeing while iterating it is safe). */
  liveSlots(): Int32Array {
    const out = new Int32Array(this.live);
    let k = 0;
    for (let s = 0; s < this.used; s++) if (this.flags[s]! & LIVE) out[k++] = s;
    return out;
  }

  private grow(): void {
    const n = Math.min(this.flags.length * 2, this.limit);
    const granter = new Uint16Array(n); granter.set(this.granter); this.granter = granter;
    const ref = new Uint32Array(n); ref.set(this.ref); this.ref = ref;
    const flags = new Uint8Array(n); flags.set(this.flags); this.flags = flags;
    const gen = new Uint16Array(n).fill(1); gen.set(this.gen); this.gen = gen;
    const next = new Int32Array(n); next.set(this.next); this.next = next;
  }
}
