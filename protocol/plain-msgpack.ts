/**
 * A structural check of a MessagePack frame before it is decoded.
 *
 * The protocol uses plain MessagePack only: nil, bool, int, float, str, bin,
 * array and map with string keys. Extension types are refused, because a
 * general decoder gives them meaning (msgpackr's records, for one, change the
 * decoder's state for later frames), and nesting is bounded so that a hostile
 * frame cannot exhaust the stack. The scan walks the bytes once and allocates
 * nothing.
 */
import { ProtocolError } from './errors.ts';

/** Deepest nesting of arrays and maps accepted in a frame. */
export const MAX_NESTING = 16;

/**
 * Throws ERR_MALFORMED unless `bytes` holds exactly one plain MessagePack value
 * whose top level is a map.
 */
export function checkPlainMsgpack(bytes: Uint8Array): void {
  if (bytes.length === 0) malformed('empty frame');
  const first = bytes[0]!;
  if (!((first >= 0x80 && first <= 0x8f) || first === 0xde || first === 0xdf)) malformed('the top-level value is not a map');
  const end = skipValue(bytes, 0, 0, false);
  if (end !== bytes.length) malformed(`${bytes.length - end} trailing bytes after the value`);
}

function malformed(why: string): never {
  throw new ProtocolError('ERR_MALFORMED', `malformed frame: ${why}`);
}

function need(bytes: Uint8Array, pos: number, n: number): void {
  if (pos + n > bytes.length) malformed('truncated value');
}

function readLen(bytes: Uint8Array, pos: number, width: 1 | 2 | 4): number {
  need(bytes, pos, width);
  if (width === 1) return bytes[pos]!;
  if (width === 2) return (bytes[pos]! << 8) | bytes[pos + 1]!;
  return ((bytes[pos]! << 24) >>> 0) + (bytes[pos + 1]! << 16) + (bytes[pos + 2]! << 8) + bytes[pos + 3]!;
}

/** Returns the position after the value at `pos`. `asKey` demands a string. */
function skipValue(bytes: Uint8Array, pos: number, depth: number, asKey: boolean): number {
  need(bytes, pos, 1);
  const b = bytes[pos]!;
  const isStr = (b >= 0xa0 && b <= 0xbf) || b === 0xd9 || b === 0xda || b === 0xdb;
  if (asKey && !isStr) malformed('a map key is not a string');
  if (b <= 0x7f || b >= 0xe0) return pos + 1; // fixint
  if (b >= 0xa0 && b <= 0xbf) return skipBytes(bytes, pos + 1, b & 0x1f);
  if (b >= 0x80 && b <= 0x8f) return skipItems(bytes, pos + 1, (b & 0x0f) * 2, depth, true);
  if (b >= 0x90 && b <= 0x9f) return skipItems(bytes, pos + 1, b & 0x0f, depth, false);
  switch (b) {
    case 0xc0: case 0xc2: case 0xc3: return pos + 1; // nil, false, true
    case 0xcc: case 0xd0: return skipBytes(bytes, pos + 1, 1);
    case 0xcd: case 0xd1: return skipBytes(bytes, pos + 1, 2);
    case 0xce: case 0xd2: case 0xca: return skipBytes(bytes, pos + 1, 4);
    case 0xcf: case 0xd3: case 0xcb: return skipBytes(bytes, pos + 1, 8);
    case 0xd9: case 0xc4: return skipBytes(bytes, pos + 2, readLen(bytes, pos + 1, 1));
    case 0xda: case 0xc5: return skipBytes(bytes, pos + 3, readLen(bytes, pos + 1, 2));
    case 0xdb: case 0xc6: return skipBytes(bytes, pos + 5, readLen(bytes, pos + 1, 4));
    case 0xdc: return skipItems(bytes, pos + 3, readLen(bytes, pos + 1, 2), depth, false);
    case 0xdd: return skipItems(bytes, pos + 5, readLen(bytes, pos + 1, 4), depth, false);
    case 0xde: return skipItems(bytes, pos + 3, readLen(bytes, pos + 1, 2) * 2, depth, true);
    case 0xdf: return skipItems(bytes, pos + 5, readLen(bytes, pos + 1, 4) * 2, depth, true);
    default:
      // 0xc1 is never used; 0xc7-0xc9 and 0xd4-0xd8 are extension types.
      return malformed(`type byte 0x${b.toString(16)} (extension or reserved) is not plain MessagePack`);
  }
}

function skipBytes(bytes: Uint8Array, pos: number, n: number): number {
  need(bytes, pos, n);
  return pos + n;
}

function skipItems(bytes: Uint8Array, pos: number, count: number, depth: number, isMap: boolean): number {
  if (depth + 1 > MAX_NESTING) malformed(`nesting deeper than ${MAX_NESTING}`);
  // Every item takes at least one byte: refuse counts the frame cannot hold before looping.
  if (count > bytes.length - pos) malformed('element count exceeds the frame');
  for (let i = 0; i < count; i++) pos = skipValue(bytes, pos, depth + 1, isMap && i % 2 === 0);
  return pos;
}
