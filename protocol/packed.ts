/**
 * Packed arrays (SPEC.md 4.1): integer arrays carried as one MessagePack
 * bin, little-endian, elements back to back. A 65,536-entry grant batch is
 * then one 256 KiB memcpy-able field instead of 65,536 MessagePack values.
 *
 * Decoding checks the byte length (a whole number of elements, at most
 * maxLen of them) and every element's bounds without allocating per
 * element, and yields a typed array over the frame's own bytes (copied only
 * when the bin is not aligned to the element size, or on a big-endian host).
 */
import { ProtocolError } from './errors.ts';
import { PACKED_ELEMENTS, type FieldType, type Fields, type PackedArrays, type PackedElement, type PackedType } from './schema.ts';

/** True on a little-endian host, where the wire layout is the memory layout. */
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

type AnyPacked = PackedArrays[PackedElement];

function fail(code: 'ERR_FIELD_TYPE' | 'ERR_FIELD_RANGE', path: string, why: string): never {
  throw new ProtocolError(code, `${path}: ${why}`, path);
}

/**
 * Validates a packed field: either the bytes of a received bin or a typed
 * array of the declared element type (a value about to be sent). Returns
 * the typed array.
 */
export function validatePacked<E extends PackedElement>(type: PackedType<E>, value: unknown, path: string): PackedArrays[E] {
  const info = PACKED_ELEMENTS[type.of];
  let arr: AnyPacked;
  if (type.of !== 'u8' && value instanceof info.array) {
    arr = value as AnyPacked;
  } else if (value instanceof Uint8Array) {
    if (value.byteLength % info.bytes !== 0) {
      fail('ERR_FIELD_TYPE', path, `${value.byteLength} bytes are not a whole number of ${info.bytes}-byte ${type.of} elements`);
    }
    if (value.byteLength / info.bytes > type.maxLen) fail('ERR_FIELD_RANGE', path, `${value.byteLength / info.bytes} elements exceed ${type.maxLen}`);
    arr = fromBytes(type.of, value);
  } else {
    return fail('ERR_FIELD_TYPE', path, `expected packed ${type.of} bytes, got ${value === null ? 'nil' : Array.isArray(value) ? 'an array' : typeof value}`);
  }
  if (arr.length > type.maxLen) fail('ERR_FIELD_RANGE', path, `${arr.length} elements exceed ${type.maxLen}`);
  if (type.min !== info.min || type.max !== info.max) {
    const { min, max } = type;
    for (let i = 0; i < arr.length; i++) {
      const v = arr[i]!;
      if (v < min || v > max) fail('ERR_FIELD_RANGE', `${path}[${i}]`, `${v} is outside [${min}, ${max}]`);
    }
  }
  return arr as PackedArrays[E];
}

/** The typed array that `bytes` (little-endian elements) holds: a view when aligned on a little-endian host, else a copy. */
export function fromBytes<E extends PackedElement>(of: E, bytes: Uint8Array): PackedArrays[E] {
  const info = PACKED_ELEMENTS[of];
  const count = bytes.byteLength / info.bytes;
  if (of === 'u8') return (bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, count)) as PackedArrays[E];
  if (HOST_LE) {
    if (bytes.byteOffset % info.bytes === 0) return new info.array(bytes.buffer as ArrayBuffer, bytes.byteOffset, count) as PackedArrays[E];
    // Not Buffer#slice, which is a view: an aligned private copy.
    const copy = new Uint8Array(bytes.byteLength);
    copy.set(bytes);
    return new info.array(copy.buffer, 0, count) as PackedArrays[E];
  }
  const out = new info.array(count);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < count; i++) out[i] = readLE(dv, of, i * info.bytes);
  return out as PackedArrays[E];
}

/** The wire bytes of a typed array: a view of its memory on a little-endian host, else a little-endian copy. */
export function toBytes(arr: AnyPacked, of: PackedElement): Uint8Array {
  if (HOST_LE) return new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
  const info = PACKED_ELEMENTS[of];
  const out = new Uint8Array(arr.length * info.bytes);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < arr.length; i++) writeLE(dv, of, i * info.bytes, arr[i]!);
  return out;
}

function readLE(dv: DataView, of: PackedElement, at: number): number {
  switch (of) {
    case 'u8': return dv.getUint8(at);
    case 'i8': return dv.getInt8(at);
    case 'u16': return dv.getUint16(at, true);
    case 'i16': return dv.getInt16(at, true);
    case 'u32': return dv.getUint32(at, true);
    case 'i32': return dv.getInt32(at, true);
  }
}

function writeLE(dv: DataView, of: PackedElement, at: number, v: number): void {
  switch (of) {
    case 'u8': dv.setUint8(at, v); break;
    case 'i8': dv.setInt8(at, v); break;
    case 'u16': dv.setUint16(at, v, true); break;
    case 'i16': dv.setInt16(at, v, true); break;
    case 'u32': dv.setUint32(at, v, true); break;
    case 'i32': dv.setInt32(at, v, true); break;
  }
}

const packedCache = new WeakMap<Fields, boolean>();

/** True if any field of `fields`, at any depth, is packed (cached per declaration). */
export function hasPacked(fields: Fields): boolean {
  let known = packedCache.get(fields);
  if (known === undefined) {
    known = Object.values(fields).some((f) => typeHasPacked(f.type));
    packedCache.set(fields, known);
  }
  return known;
}

function typeHasPacked(type: FieldType): boolean {
  if (type.kind === 'packed') return true;
  if (type.kind === 'array') return typeHasPacked(type.of);
  if (type.kind === 'struct') return hasPacked(type.fields);
  return false;
}

/**
 * A validated body as MessagePack should carry it: every packed field's
 * typed array replaced by its little-endian bytes (msgpackr would otherwise
 * write a typed array's elements, not its bytes). Only fields that contain
 * packed values are rebuilt.
 */
export function packedToWire(fields: Fields, body: Record<string, unknown>): Record<string, unknown> {
  if (!hasPacked(fields)) return body;
  const out: Record<string, unknown> = { ...body };
  for (const [name, field] of Object.entries(fields)) {
    const v = out[name];
    if (v !== undefined) out[name] = valueToWire(field.type, v);
  }
  return out;
}

function valueToWire(type: FieldType, value: unknown): unknown {
  if (type.kind === 'packed') return toBytes(value as AnyPacked, type.of);
  if (type.kind === 'struct') return packedToWire(type.fields, value as Record<string, unknown>);
  if (type.kind === 'array' && typeHasPacked(type.of)) return (value as unknown[]).map((v) => valueToWire(type.of, v));
  return value;
}
