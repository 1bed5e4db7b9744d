/**
 * The envelope fields of a frame that can be read even when the frame is
 * refused (SPEC.md section 4, "Readable id").
 *
 * A receiver answers a refused request with an `err` reply carrying its id,
 * so that the requester gets its one reply (section 6), whenever `kind`,
 * `type` and `id` can be read. "Can be read" is defined on the bytes, not on
 * a decoder's leniency, so that every implementation agrees: the top-level
 * map's entries are walked in order as long as every key is a str and every
 * value's extent is known from its header (extension values are skipped by
 * their length, never interpreted; arrays and maps are walked to their end
 * up to the nesting limit). The walk stops at the first byte that cannot be
 * walked so (the reserved byte 0xc1, a key that is not a str, a truncated
 * value, nesting beyond the limit) or at the end of the map; bytes after the
 * map play no part. A key met more than once counts with its last value, as
 * in a decoded map. `id` and `v` count only as MessagePack integers in their
 * envelope range, `kind` and `type` only as str.
 */
import { STRUCTURE_LIMITS } from './frame-limits.ts';
import { MAX_NESTING, type StructureLimits } from './plain-msgpack.ts';

/** What could be read of a frame's envelope. */
export interface ReadableHead { kind?: 'req' | 'res' | 'err' | 'evt'; type?: string; id?: number; v?: number }

/** A value read from the head of a frame: an integer, a string, or something else (skipped). */
type HeadValue = { int: number } | { str: string } | null;

class Unwalkable extends Error {}

/** Reads `kind`, `type`, `id` and `v` from the top-level map of `bytes`, as far as the bytes can be walked. Never throws. */
export function readEnvelopeHead(bytes: Uint8Array, limits: StructureLimits = STRUCTURE_LIMITS): ReadableHead {
  const head: ReadableHead = {};
  const walker = new Walker(bytes, limits);
  try {
    const count = walker.mapHeader();
    // No declared envelope has more entries than the largest declared map: walk no further (SPEC 3.3).
    for (let i = 0; i < Math.min(count, limits.maxMap); i++) {
      const key = walker.key();
      const value = walker.value(1, key === 'kind' || key === 'type' || key === 'id' || key === 'v');
      if (key === 'id') assignInt(head, 'id', value, 0, 0xffffffff);
      else if (key === 'v') assignInt(head, 'v', value, 1, 0xffff);
      else if (key === 'type') {
        if (value && 'str' in value && value.str.length <= 64) head.type = value.str;
        else delete head.type;
      } else if (key === 'kind') {
        const kind = value && 'str' in value ? value.str : undefined;
        if (kind === 'req' || kind === 'res' || kind === 'err' || kind === 'evt') head.kind = kind;
        else delete head.kind;
      }
    }
  } catch (e) {
    if (!(e instanceof Unwalkable)) throw e;
  }
  return head;
}

function assignInt(head: ReadableHead, name: 'id' | 'v', value: HeadValue, min: number, max: number): void {
  if (value && 'int' in value && value.int >= min && value.int <= max) head[name] = value.int;
  else delete head[name];
}

/** A forward-only reader of MessagePack headers. */
class Walker {
  private pos = 0;
  private walked = 0;
  constructor(private readonly bytes: Uint8Array, private readonly limits: StructureLimits) {}

  mapHeader(): number {
    const b = this.byte();
    if (b >= 0x80 && b <= 0x8f) return b & 0x0f;
    if (b === 0xde) return this.uint(2);
    if (b === 0xdf) return this.uint(4);
    throw new Unwalkable();
  }

  key(): string {
    const b = this.byte();
    let len: number;
    if (b >= 0xa0 && b <= 0xbf) len = b & 0x1f;
    else if (b === 0xd9) len = this.uint(1);
    else if (b === 0xda) len = this.uint(2);
    else if (b === 0xdb) len = this.uint(4);
    else throw new Unwalkable();
    return this.text(len);
  }

  /** Skips one value; returns it when `wanted` and it is an integer or a str. */
  value(depth: number, wanted: boolean): HeadValue {
    const b = this.byte();
    if (b <= 0x7f) return { int: b };
    if (b >= 0xe0) return { int: b - 0x100 };
    if (b >= 0xa0 && b <= 0xbf) return this.str(b & 0x1f, wanted);
    if (b >= 0x80 && b <= 0x8f) return this.items((b & 0x0f) * 2, depth, true);
    if (b >= 0x90 && b <= 0x9f) return this.items(b & 0x0f, depth, false);
    switch (b) {
      case 0xc0: case 0xc2: case 0xc3: return null;
      case 0xcc: return { int: this.uint(1) };
      case 0xcd: return { int: this.uint(2) };
      case 0xce: return { int: this.uint(4) };
      case 0xcf: return { int: this.uint(8) };
      case 0xd0: return { int: this.sint(1) };
      case 0xd1: return { int: this.sint(2) };
      case 0xd2: return { int: this.sint(4) };
      case 0xd3: return { int: this.sint(8) };
      case 0xca: this.skip(4); return null;
      case 0xcb: this.skip(8); return null;
      case 0xd9: return this.str(this.uint(1), wanted);
      case 0xda: return this.str(this.uint(2), wanted);
      case 0xdb: return this.str(this.uint(4), wanted);
      case 0xc4: this.skip(this.uint(1)); return null;
      case 0xc5: this.skip(this.uint(2)); return null;
      case 0xc6: this.skip(this.uint(4)); return null;
      case 0xdc: return this.items(this.uint(2), depth, false);
      case 0xdd: return this.items(this.uint(4), depth, false);
      case 0xde: return this.items(this.uint(2) * 2, depth, true);
      case 0xdf: return this.items(this.uint(4) * 2, depth, true);
      // Extension values: skipped by their length (type byte + data), never interpreted.
      case 0xd4: this.skip(2); return null;
      case 0xd5: this.skip(3); return null;
      case 0xd6: this.skip(5); return null;
      case 0xd7: this.skip(9); return null;
      case 0xd8: this.skip(17); return null;
      case 0xc7: this.skip(this.uint(1) + 1); return null;
      case 0xc8: this.skip(this.uint(2) + 1); return null;
      case 0xc9: this.skip(this.uint(4) + 1); return null;
      default: throw new Unwalkable(); // 0xc1, never used
    }
  }

  private str(len: number, wanted: boolean): HeadValue {
    if (wanted) return { str: this.text(len) };
    this.skip(len);
    return null;
  }

  private text(len: number): string {
    const start = this.pos;
    this.skip(len);
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset + start, len).toString('utf8');
  }

  private items(count: number, depth: number, isMap: boolean): null {
    if (depth + 1 > MAX_NESTING) throw new Unwalkable();
    if (count > this.bytes.length - this.pos) throw new Unwalkable();
    // The walk costs no more than decoding the largest legitimate frame (SPEC 3.3's structure limits).
    if (count > (isMap ? 2 * this.limits.maxMap : this.limits.maxArray)) throw new Unwalkable();
    this.walked += count;
    if (this.walked > this.limits.maxItems) throw new Unwalkable();
    for (let i = 0; i < count; i++) {
      if (isMap && i % 2 === 0) this.skipKey();
      else this.value(depth + 1, false);
    }
    return null;
  }

  /** A nested map's key: checked to be a str, not read. */
  private skipKey(): void {
    const b = this.byte();
    if (b >= 0xa0 && b <= 0xbf) this.skip(b & 0x1f);
    else if (b === 0xd9) this.skip(this.uint(1));
    else if (b === 0xda) this.skip(this.uint(2));
    else if (b === 0xdb) this.skip(this.uint(4));
    else throw new Unwalkable();
  }

  private byte(): number {
    if (this.pos >= this.bytes.length) throw new Unwalkable();
    return this.bytes[this.pos++]!;
  }

  private skip(n: number): void {
    if (this.pos + n > this.bytes.length) throw new Unwalkable();
    this.pos += n;
  }

  private uint(width: 1 | 2 | 4 | 8): number {
    const start = this.pos;
    this.skip(width);
    let n = 0;
    for (let i = start; i < start + width; i++) n = n * 256 + this.bytes[i]!;
    return n;
  }

  private sint(width: 1 | 2 | 4 | 8): number {
    const u = this.uint(width);
    const span = 2 ** (8 * width);
    return u >= span / 2 ? u - span : u;
  }
}
