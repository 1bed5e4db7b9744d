/**
 * The timeline page: the shared-memory record of one timeline's signalled
 * state, in the owner's RAM, granted read-only to every observer.
 *
 * ```
 *  byte 0        4        6        8        12       16                24      28            64
 *       +--------+--------+--------+--------+--------+-----------------+-------+-- reserved --+
 *       | magic  | version| nslots | state  | close  |     seqno       |advance|      0       |
 *       +--------+--------+--------+--------+--------+-----------------+-------+--------------+
 *         u32      u16      u16      i32      i32          u64           u32
 *  byte 64 + 16*i: slot i
 *       +-----------------+--------+--------+
 *       |   tag (seqno)   | status | rsvd 0 |
 *       +-----------------+--------+--------+
 *              u64           i32      u32
 * ```
 *
 * Every field is written by the owner only; observers map the page
 * PROT_READ and only load. Loads and stores are Atomics (sequentially
 * consistent), so the order of the owner's stores is the order in which an
 * observer can see them: a slot's status is stored before the seqno that
 * passes its point, and the slot statuses and close status before the
 * closed state. That ordering is what lets an observer read a point's error
 * as soon as it sees the seqno pass it, with no message.
 */
import { FENCE_PAGE_BYTES, FENCE_PAGE_HEADER_BYTES, FENCE_PAGE_SLOTS, FENCE_SLOT_BYTES } from '../../protocol/messages/fence.ts';

/** "HFTL" read as a little-endian u32. */
export const TIMELINE_PAGE_MAGIC = 0x4c544648;
/** Layout version. */
export const TIMELINE_PAGE_VERSION = 1;

/** Value of the header's state word. */
export const PageState = {
  /** Scrubbed page, header not yet written (an observer refuses it). */
  Uninit: 0,
  /** The owner signals points on it. */
  Live: 1,
  /** The owner destroyed the timeline: no seqno will follow; pending points have their final status in their slots. */
  Closed: 2,
} as const;
/** One of the PageState states. */
export type PageState = (typeof PageState)[keyof typeof PageState];

// Indices into the typed arrays over the page (i32 words, u64 words).
const W_MAGIC = 0;
const W_VERSION_SLOTS = 1; // u16 version | u16 nslots << 16
const W_STATE = 2;
const W_CLOSE_STATUS = 3;
const Q_SEQNO = 2; // bytes 16..23
const W_ADVANCES = 6;
const SLOT_WORDS = FENCE_SLOT_BYTES / 4;
const SLOT_BASE_WORDS = FENCE_PAGE_HEADER_BYTES / 4;

/** Typed views over one page, either a page of own RAM or a foreign mapping. */
interface PageViews {
  readonly words: Int32Array;
  readonly quads: BigUint64Array;
}

function views(buffer: ArrayBuffer, byteOffset: number): PageViews {
  if (byteOffset % 8 !== 0 || buffer.byteLength < byteOffset + FENCE_PAGE_BYTES) {
    throw new RangeError(`timeline page: need 4096 bytes at an 8-aligned offset, got offset ${byteOffset} in ${buffer.byteLength} bytes`);
  }
  return {
    words: new Int32Array(buffer, byteOffset, FENCE_PAGE_BYTES / 4),
    quads: new BigUint64Array(buffer, byteOffset, FENCE_PAGE_BYTES / 8),
  };
}

function slotWord(slot: number): number {
  return SLOT_BASE_WORDS + slot * SLOT_WORDS;
}

function slotQuad(slot: number): number {
  return slotWord(slot) / 2;
}

/** The owner's side: writes the page in the protocol's order. */
export class TimelinePageWriter {
  readonly slotCount: number;
  readonly #v: PageViews;

  /**
   * @param buffer memory holding the page (the owner's RAM mapping)
   * @param byteOffset where the page starts (frame * 4096)
   * @param slotCount error slots to announce (at most FENCE_PAGE_SLOTS)
   */
  constructor(buffer: ArrayBuffer, byteOffset: number, slotCount = FENCE_PAGE_SLOTS) {
    if (!Number.isInteger(slotCount) || slotCount < 1 || slotCount > FENCE_PAGE_SLOTS) throw new RangeError(`slotCount ${slotCount} out of 1..${FENCE_PAGE_SLOTS}`);
    this.#v = views(buffer, byteOffset);
    this.slotCount = slotCount;
  }

  /** Writes the header of a fresh (scrubbed) page with seqno `initial`, state written last. */
  init(initial = 0): void {
    const { words, quads } = this.#v;
    Atomics.store(words, W_MAGIC, TIMELINE_PAGE_MAGIC | 0);
    Atomics.store(words, W_VERSION_SLOTS, (TIMELINE_PAGE_VERSION | (this.slotCount << 16)) | 0);
    Atomics.store(words, W_CLOSE_STATUS, 0);
    Atomics.store(quads, Q_SEQNO, BigInt(initial));
    Atomics.store(words, W_ADVANCES, 0);
    Atomics.store(words, W_STATE, PageState.Live);
  }

  /** Assigns a slot to point `seqno`, still pending: tag first, then status 0. */
  assignSlot(slot: number, seqno: number): void {
    this.#check(slot);
    Atomics.store(this.#v.quads, slotQuad(slot), BigInt(seqno));
    Atomics.store(this.#v.words, slotWord(slot) + 2, 0);
  }

  /** The final status of the slot's point: 1 or a negative errno. Stored before the seqno that passes the point. */
  setSlotStatus(slot: number, status: number): void {
    this.#check(slot);
    Atomics.store(this.#v.words, slotWord(slot) + 2, status);
  }

  /** Returns a slot to zero (status first, so a stale reader never pairs a new tag with an old status). */
  clearSlot(slot: number): void {
    this.#check(slot);
    Atomics.store(this.#v.words, slotWord(slot) + 2, 0);
    Atomics.store(this.#v.quads, slotQuad(slot), 0n);
  }

  /** Publishes a new last-signalled seqno (after every slot status it covers), and counts the advance. */
  publishSeqno(seqno: number): void {
    Atomics.store(this.#v.quads, Q_SEQNO, BigInt(seqno));
    Atomics.add(this.#v.words, W_ADVANCES, 1);
  }

  /** Marks the timeline closed: the close status first, then the state. */
  close(closeStatus: number): void {
    Atomics.store(this.#v.words, W_CLOSE_STATUS, closeStatus);
    Atomics.store(this.#v.words, W_STATE, PageState.Closed);
  }

  #check(slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slotCount) throw new RangeError(`slot ${slot} out of 0..${this.slotCount - 1}`);
  }
}

/** Why a page header was refused. */
export class TimelinePageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TimelinePageError';
  }
}

/** What an observer reads of a slot. */
export interface SlotRead {
  /** The point the slot is assigned to (0 when free). */
  tag: number;
  /** 0 pending, 1 signalled, negative errno. */
  status: number;
}

/**
 * The observer's side: only loads, never stores (its mapping is PROT_READ;
 * a store would fault). Every value read is validated before use, because
 * the page belongs to another domain.
 */
export class TimelinePageReader {
  readonly slotCount: number;
  readonly #v: PageViews;

  /**
   * Checks the header and returns a reader.
   * @throws TimelinePageError for a bad magic, version or slot count
   */
  constructor(buffer: ArrayBuffer, byteOffset = 0) {
    this.#v = views(buffer, byteOffset);
    const magic = Atomics.load(this.#v.words, W_MAGIC) >>> 0;
    if (magic !== TIMELINE_PAGE_MAGIC) throw new TimelinePageError(`bad magic 0x${magic.toString(16)}`);
    const vs = Atomics.load(this.#v.words, W_VERSION_SLOTS) >>> 0;
    const version = vs & 0xffff;
    const slots = vs >>> 16;
    if (version !== TIMELINE_PAGE_VERSION) throw new TimelinePageError(`unsupported page version ${version}`);
    if (slots < 1 || slots > FENCE_PAGE_SLOTS) throw new TimelinePageError(`slot count ${slots} out of 1..${FENCE_PAGE_SLOTS}`);
    this.slotCount = slots;
    // A state not yet written means the owner shared the page before initialising it: refuse.
    const state = this.state();
    if (state !== PageState.Live && state !== PageState.Closed) throw new TimelinePageError(`page state ${state} is not live or closed`);
  }

  /** The last signalled seqno (clamped to 2^53-1: a larger value is a protocol violation that reads as "everything passed"). */
  seqno(): number {
    const v = Atomics.load(this.#v.quads, Q_SEQNO);
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
  }

  /** The state word. */
  state(): number {
    return Atomics.load(this.#v.words, W_STATE);
  }

  /** Status the owner gave points pending when it closed the timeline (0 while live). */
  closeStatus(): number {
    return Atomics.load(this.#v.words, W_CLOSE_STATUS);
  }

  /** Advances published so far (wraps at 2^32; diagnostics). */
  advances(): number {
    return Atomics.load(this.#v.words, W_ADVANCES) >>> 0;
  }

  /** A slot's status, then its tag: read in the reverse of the owner's clear order. */
  readSlot(slot: number): SlotRead {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slotCount) throw new RangeError(`slot ${slot} out of 0..${this.slotCount - 1}`);
    const status = Atomics.load(this.#v.words, slotWord(slot) + 2);
    const tag = Atomics.load(this.#v.quads, slotQuad(slot));
    return { tag: tag > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(tag), status };
  }
}
