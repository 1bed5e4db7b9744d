/**
 * hyper_dmabuf buffer ids (SPEC.md 10.1): `{ dom, cnt, key }`.
 *
 * - `dom`: the exporting domain, 16 bits wide on the wire (the original
 *   packed it into 8 bits of a 32-bit int).
 * - `cnt`: a counter unique among the exporter's live exports. Freed
 *   counters are reused (LIFO, as the original), but only after the export
 *   was completely released, and never past the configured maximum of live
 *   ids (default 1,048,576; the original stopped at 1000).
 * - `key`: 128 random bits from the CSPRNG, drawn afresh for every id,
 *   including a reused counter: an importer that kept an old id cannot reach
 *   the new buffer behind the same counter.
 *
 * Lookups always compare counter and key; this module gives the canonical
 * string form used as a map key, so that one map lookup does both.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { ProtocolError } from '../../protocol/errors.ts';
import { MAX_DOMID } from '../../protocol/limits.ts';
import { DMABUF_KEY_BYTES } from '../../protocol/messages/dmabuf.ts';

/** A buffer id. */
export interface Hid {
  /** Exporting domain. */
  readonly dom: number;
  /** Counter. */
  readonly cnt: number;
  /** 16 random bytes. */
  readonly key: Uint8Array;
}

/** Default most live ids per domain. */
export const DEFAULT_MAX_LIVE_IDS = 1 << 20;

/** Canonical text form `dom:cnt:keyhex`, used as the map key (compares counter and key at once). */
export function hidKey(hid: Hid): string {
  return `${hid.dom}:${hid.cnt}:${Buffer.from(hid.key.buffer, hid.key.byteOffset, hid.key.byteLength).toString('hex')}`;
}

/** Human-readable form, e.g. `hid{d1 #7 5a1f930c…}`. */
export function formatHid(hid: Hid): string {
  return `hid{d${hid.dom} #${hid.cnt} ${Buffer.from(hid.key).toString('hex').slice(0, 8)}…}`;
}

/** Parses the form hidKey() produces (for IPC and the CLI); throws ERR_BAD_ARGUMENT. */
export function parseHid(text: string): Hid {
  const m = /^(\d{1,5}):(\d{1,10}):([0-9a-f]{32})$/.exec(text);
  const dom = m ? Number(m[1]) : -1;
  const cnt = m ? Number(m[2]) : -1;
  if (!m || dom > MAX_DOMID || cnt > 0xffffffff) throw new ProtocolError('ERR_BAD_ARGUMENT', `'${text}' is not a buffer id (dom:cnt:32 hex digits)`);
  return { dom, cnt, key: Uint8Array.from(Buffer.from(m[3]!, 'hex')) };
}

/** True if both ids have the same domain, counter and key (key compared in constant time). */
export function sameHid(a: Hid, b: Hid): boolean {
  return a.dom === b.dom && a.cnt === b.cnt && a.key.byteLength === b.key.byteLength
    && timingSafeEqual(a.key, b.key);
}

/** A copy of an id that owns its key bytes (ids decoded from a frame view the frame's buffer). */
export function copyHid(hid: Hid): Hid {
  return { dom: hid.dom, cnt: hid.cnt, key: Uint8Array.from(hid.key) };
}

/** A fresh random key. */
export function randomKey(): Uint8Array {
  return new Uint8Array(randomBytes(DMABUF_KEY_BYTES));
}

/**
 * Allocates ids for one exporting domain. Counters of released ids are
 * reused last-in first-out; every id gets a new key.
 */
export class HidAllocator {
  /** The exporting domain. */
  readonly dom: number;
  /** Most ids live at once. */
  readonly maxLive: number;
  private readonly freeCounters: number[] = [];
  private readonly liveCounters = new Set<number>();
  private nextCounter = 1;

  constructor(dom: number, maxLive = DEFAULT_MAX_LIVE_IDS) {
    if (!Number.isInteger(dom) || dom < 0 || dom > MAX_DOMID) throw new RangeError(`domain ${dom} out of range`);
    if (!Number.isInteger(maxLive) || maxLive < 1 || maxLive > 0xfffffffe) throw new RangeError(`maxLive ${maxLive} out of range`);
    this.dom = dom;
    this.maxLive = maxLive;
  }

  /** Ids live now. */
  get live(): number {
    return this.liveCounters.size;
  }

  /** A new id; ERR_LIMIT when maxLive ids are live. */
  allocate(): Hid {
    if (this.liveCounters.size >= this.maxLive) {
      throw new ProtocolError('ERR_LIMIT', `dom${this.dom} already has ${this.liveCounters.size} live buffer ids (limit ${this.maxLive})`);
    }
    let cnt = this.freeCounters.pop();
    if (cnt === undefined) {
      // Counters 1..maxLive suffice (maxLive < 2^32), so nextCounter never leaves u32.
      cnt = this.nextCounter++;
    }
    this.liveCounters.add(cnt);
    return { dom: this.dom, cnt, key: randomKey() };
  }

  /** Returns an id's counter for reuse (only once its export is completely released). */
  release(hid: Hid): void {
    if (hid.dom !== this.dom || !this.liveCounters.delete(hid.cnt)) {
      throw new ProtocolError('ERR_BAD_ARGUMENT', `${formatHid(hid)} is not a live id of dom${this.dom}`);
    }
    this.freeCounters.push(hid.cnt);
  }
}
