/**
 * The decoder of frames: plain MessagePack only, with its work bounded before
 * it is spent (SPEC.md sections 2-4).
 *
 * The protocol uses nil, bool, int, float, str, bin, array and map with
 * string keys. Extension types are refused, because a general decoder gives
 * them meaning (msgpackr's records, for one, change the decoder's state for
 * later frames). Every array and map count is compared with the limits
 * before anything of it is built: no declaration allows more than
 * `maxArray` elements or `maxMap` entries, and no declared frame more than
 * `maxItems` values in all, so a hostile frame costs no more than the
 * largest legitimate one. Nesting is bounded so that the stack is too.
 *
 * The decoder keeps what a general one loses:
 * - a float stays a float (a WireFloat), even when its value is integral,
 *   so that SPEC 2's "integers are MessagePack integers" can be checked;
 * - an integer beyond 2^53 becomes a bigint instead of a rounded number;
 * - every map key (`__proto__` too) is an own property with its exact name.
 */
import { ProtocolError } from './errors.ts';

/** Deepest nesting of arrays and maps accepted in a frame. */
export const MAX_NESTING = 16;

/** Bounds on the structure of one frame, checked before the structure is built. */
export interface StructureLimits {
  /** Most elements in one array. */
  readonly maxArray: number;
  /** Most entries in one map. */
  readonly maxMap: number;
  /** Most values (map keys included) in the whole frame. */
  readonly maxItems: number;
}

/** A MessagePack float (float32 or float64), kept apart from integers whatever its value. */
export class WireFloat {
  constructor(readonly value: number) {}
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes one frame: exactly one plain MessagePack value whose top level is
 * a map, within `limits`. Throws ProtocolError ERR_MALFORMED otherwise.
 */
export function decodePlainMsgpack(bytes: Uint8Array, limits: StructureLimits): Record<string, unknown> {
  const decoder = new PlainDecoder(bytes, limits);
  decoder.step(Infinity);
  return decoder.result;
}

function malformed(why: string): never {
  throw new ProtocolError('ERR_MALFORMED', `malformed frame: ${why}`);
}

/**
 * A resumable decoder of one frame (SPEC 3.3): `step(budget)` reads at most
 * `budget` values (map keys included) and returns whether the frame is
 * complete, so that a large frame can be decoded across several turns of
 * the event loop (SPEC 3.7, "work per frame"). Values are read in byte
 * order with an explicit stack, so the first fault met is the same whatever
 * the budget; it is thrown as ProtocolError ERR_MALFORMED.
 */
export class PlainDecoder {
  private pos = 0;
  private items = 0;
  private readonly view: DataView;
  /**
   * The arrays and maps being filled, outermost first: level d's next
   * element goes at index `index[d]` of `count[d]`, under `keys[d]` for a
   * map. Kept in fixed arrays so that a container costs no stack object.
   */
  private depth = 0;
  // Plain arrays filled as the frame nests: a decoder is made per frame, and
  // three typed arrays plus two filled arrays cost about 2 µs of its construction.
  private readonly outs: Array<unknown[] | Record<string, unknown> | undefined> = [];
  private readonly isMap: number[] = [];
  private readonly count: number[] = [];
  private readonly index: number[] = [];
  private readonly keys: Array<string | undefined> = [];
  private root: Record<string, unknown> | undefined;
  private finished = false;

  constructor(private readonly bytes: Uint8Array, private readonly limits: StructureLimits) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** The decoded top-level map, once step() has returned true. */
  get result(): Record<string, unknown> {
    if (!this.finished || this.root === undefined) throw new Error('PlainDecoder: the frame is not decoded yet');
    return this.root;
  }

  /** Reads up to `budget` more values; true once the whole frame is read. Throws ProtocolError ERR_MALFORMED. */
  step(budget: number): boolean {
    if (this.finished) return true;
    if (this.root === undefined) this.begin();
    const { outs, isMap, count, index, keys } = this;
    let work = 0;
    while (this.depth > 0) {
      if (work++ >= budget) return false;
      const top = this.depth - 1;
      if (isMap[top] === 1 && keys[top] === undefined) {
        const b = this.bytes[this.pos];
        const isStr = b !== undefined && ((b >= 0xa0 && b <= 0xbf) || b === 0xd9 || b === 0xda || b === 0xdb);
        if (!isStr) malformed(b === undefined ? 'truncated value' : 'a map key is not a string');
        keys[top] = this.value(this.depth) as string;
        continue;
      }
      if (isMap[top] === 1) {
        const value = this.value(this.depth);
        const key = keys[top]!;
        const out = outs[top] as Record<string, unknown>;
        // `__proto__` as a plain key would set the prototype: define it as the own property it is on the wire.
        if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
        else out[key] = value;
        keys[top] = undefined;
        index[top] = index[top]! + 1;
      } else {
        // An array's elements in one loop, until its end, the budget, or an element that opens a container.
        const out = outs[top] as unknown[];
        const n = count[top]!;
        let i = index[top]!;
        out[i++] = this.value(this.depth);
        while (i < n && this.depth === top + 1 && work < budget) {
          work++;
          out[i++] = this.value(this.depth);
        }
        index[top] = i;
      }
      // A container opened by this value is a new level above `top`; otherwise close every level now complete.
      while (this.depth > 0 && index[this.depth - 1]! >= count[this.depth - 1]!) {
        outs[--this.depth] = undefined;
      }
    }
    if (this.pos !== this.bytes.length) malformed(`${this.bytes.length - this.pos} trailing bytes after the value`);
    this.finished = true;
    return true;
  }

  private begin(): void {
    const bytes = this.bytes;
    if (bytes.length === 0) malformed('empty frame');
    const first = bytes[0]!;
    if (!((first >= 0x80 && first <= 0x8f) || first === 0xde || first === 0xdf)) malformed('the top-level value is not a map');
    this.root = this.value(0) as Record<string, unknown>;
  }

  /**
   * Reads one value at nesting `depth` (the number of open containers). A
   * scalar is returned whole; an array or map is returned empty, after its
   * count is checked, and pushed to be filled when it has elements.
   */
  private value(depth: number): unknown {
    const b = this.byte();
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b >= 0xa0 && b <= 0xbf) return this.str(b & 0x1f);
    if (b >= 0x80 && b <= 0x8f) return this.open(b & 0x0f, depth, true);
    if (b >= 0x90 && b <= 0x9f) return this.open(b & 0x0f, depth, false);
    const v = this.view;
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xcc: return this.byte();
      case 0xcd: this.need(2); this.pos += 2; return v.getUint16(this.pos - 2);
      case 0xce: this.need(4); this.pos += 4; return v.getUint32(this.pos - 4);
      case 0xcf: this.need(8); this.pos += 8; return exact(v.getBigUint64(this.pos - 8));
      case 0xd0: this.need(1); this.pos += 1; return v.getInt8(this.pos - 1);
      case 0xd1: this.need(2); this.pos += 2; return v.getInt16(this.pos - 2);
      case 0xd2: this.need(4); this.pos += 4; return v.getInt32(this.pos - 4);
      case 0xd3: this.need(8); this.pos += 8; return exact(v.getBigInt64(this.pos - 8));
      case 0xca: this.need(4); this.pos += 4; return new WireFloat(v.getFloat32(this.pos - 4));
      case 0xcb: this.need(8); this.pos += 8; return new WireFloat(v.getFloat64(this.pos - 8));
      case 0xd9: return this.str(this.len(1));
      case 0xda: return this.str(this.len(2));
      case 0xdb: return this.str(this.len(4));
      case 0xc4: return this.bin(this.len(1));
      case 0xc5: return this.bin(this.len(2));
      case 0xc6: return this.bin(this.len(4));
      case 0xdc: return this.open(this.len(2), depth, false);
      case 0xdd: return this.open(this.len(4), depth, false);
      case 0xde: return this.open(this.len(2), depth, true);
      case 0xdf: return this.open(this.len(4), depth, true);
      default:
        // 0xc1 is never used; 0xc7-0xc9 and 0xd4-0xd8 are extension types.
        return malformed(`type byte 0x${b.toString(16)} (extension or reserved) is not plain MessagePack`);
    }
  }

  private byte(): number {
    if (this.pos >= this.bytes.length) malformed('truncated value');
    return this.bytes[this.pos++]!;
  }

  private need(n: number): void {
    if (this.pos + n > this.bytes.length) malformed('truncated value');
  }

  private len(width: 1 | 2 | 4): number {
    this.need(width);
    const v = this.view;
    const p = this.pos;
    this.pos += width;
    return width === 1 ? v.getUint8(p) : width === 2 ? v.getUint16(p) : v.getUint32(p);
  }

  private str(n: number): string {
    this.need(n);
    const start = this.pos;
    this.pos += n;
    const bytes = this.bytes;
    // Short ASCII strings (keys, names, codes): the same few keys recur in every element of a batch.
    if (n <= SHORT_KEY_BYTES) {
      let h = n;
      for (let i = start; i < start + n; i++) {
        const c = bytes[i]!;
        if (c >= 0x80) return this.utf8(start, n);
        h = h * 256 + c;
      }
      return shortAscii(h, bytes, start, n);
    }
    if (n <= 32) {
      let s = '';
      for (let i = start; i < start + n; i++) {
        const c = bytes[i]!;
        if (c >= 0x80) return this.utf8(start, n);
        s += String.fromCharCode(c);
      }
      return s;
    }
    return this.utf8(start, n);
  }

  private utf8(start: number, n: number): string {
    try {
      return UTF8.decode(this.bytes.subarray(start, start + n));
    } catch {
      return malformed('a string is not valid UTF-8');
    }
  }

  private bin(n: number): Uint8Array {
    this.need(n);
    this.pos += n;
    return this.bytes.subarray(this.pos - n, this.pos);
  }

  private open(n: number, depth: number, isMap: boolean): unknown[] | Record<string, unknown> {
    if (depth + 1 > MAX_NESTING) malformed(`nesting deeper than ${MAX_NESTING}`);
    const max = isMap ? this.limits.maxMap : this.limits.maxArray;
    if (n > max) malformed(`${isMap ? 'map' : 'array'} of ${n} ${isMap ? 'entries' : 'elements'} exceeds ${max}, the most any declaration allows`);
    const values = isMap ? 2 * n : n;
    this.items += values;
    if (this.items > this.limits.maxItems) malformed(`more than ${this.limits.maxItems} values in one frame, the most any declared frame holds`);
    // Every value takes at least one byte: refuse counts the frame cannot hold before building anything.
    if (values > this.bytes.length - this.pos) malformed('element count exceeds the frame');
    const out = isMap ? {} : new Array<unknown>(n);
    if (n > 0) {
      const d = this.depth++;
      this.outs[d] = out;
      this.isMap[d] = isMap ? 1 : 0;
      this.count[d] = n;
      this.index[d] = 0;
      this.keys[d] = undefined;
    }
    return out;
  }
}

/** Strings of at most this many bytes are looked up by their bytes (as an exact number: 6 bytes and the length fit in 2^53). */
const SHORT_KEY_BYTES = 6;
/** Most distinct short strings remembered: a hostile frame's junk keys fill it once and are then built anew. */
const SHORT_CACHE_MAX = 4096;
const shortCache = new Map<number, string>();

function shortAscii(h: number, bytes: Uint8Array, start: number, n: number): string {
  let s = shortCache.get(h);
  if (s !== undefined) return s;
  s = '';
  for (let i = start; i < start + n; i++) s += String.fromCharCode(bytes[i]!);
  if (shortCache.size < SHORT_CACHE_MAX) shortCache.set(h, s);
  return s;
}

/** A 64-bit integer as a number when it is exact, else as a bigint (out of every declared range). */
function exact(v: bigint): number | bigint {
  return v <= MAX_SAFE && v >= MIN_SAFE ? Number(v) : v;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
