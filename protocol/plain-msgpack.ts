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
  if (bytes.length === 0) malformed('empty frame');
  const first = bytes[0]!;
  if (!((first >= 0x80 && first <= 0x8f) || first === 0xde || first === 0xdf)) malformed('the top-level value is not a map');
  const r = new Reader(bytes, limits);
  const value = r.value(0);
  if (r.pos !== bytes.length) malformed(`${bytes.length - r.pos} trailing bytes after the value`);
  return value as Record<string, unknown>;
}

function malformed(why: string): never {
  throw new ProtocolError('ERR_MALFORMED', `malformed frame: ${why}`);
}

class Reader {
  pos = 0;
  private items = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array, private readonly limits: StructureLimits) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  value(depth: number): unknown {
    const b = this.byte();
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b >= 0xa0 && b <= 0xbf) return this.str(b & 0x1f);
    if (b >= 0x80 && b <= 0x8f) return this.map(b & 0x0f, depth);
    if (b >= 0x90 && b <= 0x9f) return this.array(b & 0x0f, depth);
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
      case 0xdc: return this.array(this.len(2), depth);
      case 0xdd: return this.array(this.len(4), depth);
      case 0xde: return this.map(this.len(2), depth);
      case 0xdf: return this.map(this.len(4), depth);
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
    // Short ASCII strings (keys, names, codes) without the decoder's call overhead.
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

  private count(n: number, depth: number, what: 'array' | 'map'): void {
    if (depth + 1 > MAX_NESTING) malformed(`nesting deeper than ${MAX_NESTING}`);
    const max = what === 'array' ? this.limits.maxArray : this.limits.maxMap;
    if (n > max) malformed(`${what} of ${n} ${what === 'array' ? 'elements' : 'entries'} exceeds ${max}, the most any declaration allows`);
    this.items += what === 'array' ? n : 2 * n;
    if (this.items > this.limits.maxItems) malformed(`more than ${this.limits.maxItems} values in one frame, the most any declared frame holds`);
    // Every value takes at least one byte: refuse counts the frame cannot hold before building anything.
    if ((what === 'array' ? n : 2 * n) > this.bytes.length - this.pos) malformed('element count exceeds the frame');
  }

  private array(n: number, depth: number): unknown[] {
    this.count(n, depth, 'array');
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = this.value(depth + 1);
    return out;
  }

  private map(n: number, depth: number): Record<string, unknown> {
    this.count(n, depth, 'map');
    const out: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const b = this.bytes[this.pos];
      const isStr = b !== undefined && ((b >= 0xa0 && b <= 0xbf) || b === 0xd9 || b === 0xda || b === 0xdb);
      if (!isStr) malformed(b === undefined ? 'truncated value' : 'a map key is not a string');
      const key = this.value(depth + 1) as string;
      const value = this.value(depth + 1);
      // `__proto__` as a plain key would set the prototype: define it as the own property it is on the wire.
      if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
      else out[key] = value;
    }
    return out;
  }
}

/** A 64-bit integer as a number when it is exact, else as a bigint (out of every declared range). */
function exact(v: bigint): number | bigint {
  return v <= MAX_SAFE && v >= MIN_SAFE ? Number(v) : v;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
