/**
 * Atomic access to a grant table (v1 entries) in shared memory.
 *
 * Both the guest (which writes entries) and the backend (which sets and
 * clears GTF_reading / GTF_writing) use this view over the same file. Each
 * 8-byte entry is two 32-bit words: word 0 holds flags (low 16 bits) and
 * domid (high 16 bits), word 1 holds the frame. Atomics on an Int32Array
 * over MAP_SHARED memory are atomic across processes.
 */
import { ENTRIES_PER_FRAME, GRANT_ENTRY_BYTES, GTF } from '../../protocol/grant-abi.ts';
import { nativeMem } from './native.ts';

/** Result of ending access to a grant. */
export type EndAccessResult = 'ended' | 'busy' | 'not-granted';

/** A snapshot of one entry, read once. */
export interface GrantEntrySnapshot {
  flags: number;
  domid: number;
  /** word 0 as read, for a compare-exchange against it. */
  header: number;
}

/** A view over a whole grant-table file. */
export class GrantTableView {
  /** Number of entries the mapped memory holds. */
  readonly capacity: number;
  private readonly words: Int32Array;

  constructor(buffer: ArrayBuffer) {
    if (buffer.byteLength % (ENTRIES_PER_FRAME * GRANT_ENTRY_BYTES) !== 0) {
      throw new RangeError(`grant table of ${buffer.byteLength} bytes is not a whole number of frames`);
    }
    this.words = new Int32Array(buffer);
    this.capacity = buffer.byteLength / GRANT_ENTRY_BYTES;
  }

  /** Packs flags and domid into word 0. */
  static header(flags: number, domid: number): number {
    return ((domid & 0xffff) << 16) | (flags & 0xffff);
  }

  /** Reads word 0 once. */
  loadHeader(ref: number): GrantEntrySnapshot {
    const header = Atomics.load(this.words, ref * 2);
    return { header, flags: header & 0xffff, domid: (header >>> 16) & 0xffff };
  }

  /** Reads the frame once. */
  loadFrame(ref: number): number {
    return Atomics.load(this.words, ref * 2 + 1) >>> 0;
  }

  /** Compare-exchange on word 0; true if it held `expected` and now holds `next`. */
  casHeader(ref: number, expected: number, next: number): boolean {
    return Atomics.compareExchange(this.words, ref * 2, expected, next) === expected;
  }

  /** Atomically clears flag bits (the backend's busy bits) in word 0. */
  clearFlags(ref: number, bits: number): void {
    Atomics.and(this.words, ref * 2, ~(bits & 0xffff));
  }

  /**
   * Guest: introduces an entry, in Xen's order: (1) domid, (2) frame,
   * (3) barrier, (4) flags. The entry must be unused (flags 0).
   */
  publish(ref: number, domid: number, frame: number, readonly: boolean): void {
    this.publishMany(Uint32Array.of(ref), domid, [frame], readonly);
  }

  /**
   * Guest: publish() for refs[i] and frames[i], every i, in one native loop
   * (native/grant-publish.c: a 4K buffer grants 8,100 entries at once, and
   * an Atomics call per entry cost more than the rest of the grant). Per
   * entry, (1) and (2) are plain stores: the entry is unused (flags 0), so
   * no reader acts on them yet; the flags (4) are a release store, the
   * barrier (3): a reader that loads them atomically sees (1) and (2).
   */
  publishMany(refs: Uint32Array, domid: number, frames: ArrayLike<number>, readonly: boolean): void {
    const unused = GrantTableView.header(0, domid);
    const live = GrantTableView.header(GTF.permit_access | (readonly ? GTF.readonly : 0), domid);
    nativeMem.grantPublish(this.words, refs, frames instanceof Uint32Array ? frames : Uint32Array.from(frames), unused, live);
  }

  /**
   * Guest: ends access if the entry is not mapped, in one atomic step
   * (XSA-396): read flags, refuse if GTF_reading or GTF_writing is set,
   * otherwise compare-exchange word 0 to 0. Retries only when the word
   * changed underneath without becoming busy.
   */
  endAccess(ref: number): EndAccessResult {
    for (;;) {
      const { header, flags } = this.loadHeader(ref);
      if ((flags & GTF.type_mask) !== GTF.permit_access) return 'not-granted';
      if (flags & (GTF.reading | GTF.writing)) return 'busy';
      if (this.casHeader(ref, header, 0)) {
        Atomics.store(this.words, ref * 2 + 1, 0);
        return 'ended';
      }
    }
  }

  /** True if GTF_reading or GTF_writing is set. */
  isBusy(ref: number): boolean {
    return (this.loadHeader(ref).flags & (GTF.reading | GTF.writing)) !== 0;
  }

  /** Counts entries in use and busy among the first `limit` entries (leak checks). */
  census(limit = this.capacity): { inUse: number; busy: number } {
    let inUse = 0;
    let busy = 0;
    for (let ref = 0; ref < limit; ref++) {
      const flags = Atomics.load(this.words, ref * 2) & 0xffff;
      if ((flags & GTF.type_mask) === GTF.permit_access) inUse++;
      if (flags & (GTF.reading | GTF.writing)) busy++;
    }
    return { inUse, busy };
  }
}
