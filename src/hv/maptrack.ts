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

/** Entry flags (native/grant.c uses the same). */
const LIVE = 1;
const WRITABLE = 2;

/** Indexes of {@link Maptrack.state} (native/grant.c uses the same). */
const FREE_HEAD = 0;
const USED = 1;
const LIVE_COUNT = 2;
const LIMIT = 3;

/**
 * The maptrack of one mapping domain. The map and unmap batches run in
 * native code (grant-native.ts) over these very arrays and `state`; this
 * class grows the arrays, looks handles up and frees slots for the death
 * cascade, and its `alloc` is the reference the native map is tested
 * against (test/hv/grant-native.test.ts).
 */
export class Maptrack {
  /** Most live entries (GNTST_no_device_space beyond). */
  readonly limit: number;
  /** Granting domain of each slot. */
  granter: Uint16Array;
  /** Grant reference of each slot. */
  ref: Uint32Array;
  /** LIVE | WRITABLE of each slot (0 when free). */
  flags: Uint8Array;
  /** Generation of each slot (1..GEN_MAX), part of its handle. */
  gen: Uint16Array;
  /** Next slot of the free list (-1 ends it). */
  next: Int32Array;
  /**
   * The scalars, in an Int32Array so that native code updates them in place:
   * [free-list head (-1: empty), slots ever used (slots below are live or on
   * the free list), live entries, limit].
   */
  readonly state = new Int32Array(4);

  constructor(limit: number) {
    this.limit = limit;
    const n = Math.min(INITIAL_SLOTS, limit);
    this.granter = new Uint16Array(n);
    this.ref = new Uint32Array(n);
    this.flags = new Uint8Array(n);
    this.gen = new Uint16Array(n).fill(1);
    this.next = new Int32Array(n);
    this.state[FREE_HEAD] = -1;
    this.state[LIMIT] = limit;
  }

  /** Live entries. */
  get live(): number {
    return this.state[LIVE_COUNT]!;
  }

  /** True when no entry can be allocated. */
  get full(): boolean {
    return this.live >= this.limit;
  }

  /** True when the next allocation needs a never-used slot and every array slot is used (grow first). */
  get needsGrow(): boolean {
    return this.state[FREE_HEAD]! < 0 && this.state[USED]! === this.flags.length;
  }

  /** Records a mapping; the caller has checked `full`. Returns its handle. */
  alloc(granter: number, ref: number, writable: boolean): number {
    const st = this.state;
    let slot = st[FREE_HEAD]!;
    if (slot >= 0) {
      st[FREE_HEAD] = this.next[slot]!;
    } else {
      if (this.needsGrow) this.grow();
      slot = st[USED]!;
      st[USED] = slot + 1;
    }
    this.granter[slot] = granter;
    this.ref[slot] = ref;
    this.flags[slot] = writable ? LIVE | WRITABLE : LIVE;
    st[LIVE_COUNT]!++;
    return ((this.gen[slot]! << INDEX_BITS) | slot) >>> 0;
  }

  /** The slot of a live handle, or -1 for a handle never issued, already released, or stale. */
  lookup(handle: number): number {
    const slot = handle & INDEX_MASK;
    if (slot >= this.state[USED]!) return -1;
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
    const st = this.state;
    this.flags[slot] = 0;
    const g = this.gen[slot]!;
    this.gen[slot] = g >= GEN_MAX ? 1 : g + 1;
    this.next[slot] = st[FREE_HEAD]!;
    st[FREE_HEAD] = slot;
    st[LIVE_COUNT]!--;
  }

  /** Slots that are live now, in slot order (a snapshot: freeing while iterating it is safe). */
  liveSlots(): Int32Array {
    const out = new Int32Array(this.live);
    let k = 0;
    const used = this.state[USED]!;
    for (let s = 0; s < used; s++) if (this.flags[s]! & LIVE) out[k++] = s;
    return out;
  }

  /** Doubles the arrays, up to the limit. */
  grow(): void {
    const n = Math.min(this.flags.length * 2, this.limit);
    const granter = new Uint16Array(n); granter.set(this.granter); this.granter = granter;
    const ref = new Uint32Array(n); ref.set(this.ref); this.ref = ref;
    const flags = new Uint8Array(n); flags.set(this.flags); this.flags = flags;
    const gen = new Uint16Array(n).fill(1); gen.set(this.gen); this.gen = gen;
    const next = new Int32Array(n); next.set(this.next); this.next = next;
  }
}
