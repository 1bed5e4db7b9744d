/**
 * Active grant entries: the backend's private shadow of each entry of a
 * granting domain's table that is currently pinned (Xen's
 * `struct active_grant_entry`).
 *
 * Once an entry is pinned, the backend uses the frame and grantee recorded
 * here and never re-reads them from shared memory, which the granter can
 * change at any time (XSA-155: read shared memory once, use the copy).
 *
 * Structure of arrays over typed arrays, indexed by grant reference: a 4K
 * framebuffer is ~8,100 refs in one batch, and per-entry objects would cost
 * more than the map itself. The arrays cover `nrFrames * 512` entries and
 * grow with GNTTAB_SETUP_TABLE.
 */

/** Pinned-entry shadow of one granting domain's grant table. */
export class ActiveGrants {
  /** Read-only mappings of the entry (Xen's host-read-only pin counter). At most MAX_PIN_COUNT (grant-pin.ts). */
  pinR: Uint8Array;
  /** Writable mappings of the entry (Xen's host-writable pin counter). At most MAX_PIN_COUNT. */
  pinW: Uint8Array;
  /** Frame read once from the entry when it was first pinned. Valid while pinned. */
  frame: Uint32Array;
  /** Grantee read once from the entry when it was first pinned. Valid while pinned. */
  domid: Uint16Array;

  constructor(entries: number) {
    this.pinR = new Uint8Array(entries);
    this.pinW = new Uint8Array(entries);
    this.frame = new Uint32Array(entries);
    this.domid = new Uint16Array(entries);
  }

  /** Entries covered. */
  get length(): number {
    return this.pinR.length;
  }

  /** Grows to `entries` entries, keeping the pinned ones (tables never shrink). */
  grow(entries: number): void {
    if (entries <= this.pinR.length) return;
    this.pinR = grown(this.pinR, new Uint8Array(entries));
    this.pinW = grown(this.pinW, new Uint8Array(entries));
    this.frame = grown(this.frame, new Uint32Array(entries));
    this.domid = grown(this.domid, new Uint16Array(entries));
  }

  /** True if the entry has any pin. */
  isPinned(ref: number): boolean {
    return ((this.pinR[ref] ?? 0) | (this.pinW[ref] ?? 0)) !== 0;
  }

  /** Number of pinned entries (a census for tests and leak checks). */
  pinnedCount(): number {
    let n = 0;
    const { pinR, pinW } = this;
    for (let i = 0; i < pinR.length; i++) if ((pinR[i]! | pinW[i]!) !== 0) n++;
    return n;
  }
}

function grown<T extends Uint8Array | Uint16Array | Uint32Array>(from: T, to: T): T {
  to.set(from);
  return to;
}
