/**
 * Packed arrays (SPEC.md 4.1): integer arrays carried as one MessagePack
 * bin, little-endian, elements back to back. A 65,536-entry grant batch is
 * then one 256 KiB memcpy-able field instead of 65,536 MessagePack values.
 *
 * Decoding checks the byte length (a whole number of elements, at most
 * maxLen of them) and every element's bounds without allocating per
 * element, and yields a typed array over the frame's own bytes (copied only
 * when the bin is not aligned to the element size, or on a big-endian host).
 *
 * A field declared with the `runs` layout (SPEC.md 4.2) carries the same
 * array as run records instead: the backend's per-entry answers (statuses,
 * handles, frames of a map) come in a few long runs, so a 4K buffer's map
 * answer is a few dozen bytes instead of 81 KB to encode, send and decode.
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
  } else if (value instanceof Uint8Array && type.layout === 'runs') {
    return fromRuns(type, value, path);
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
  if (type.layout === 'runs' && arr.length > 0) {
    // About to be sent as run records: split it now and check the records as the receiver will (per run,
    // not per element); valueToWire sends these very records.
    const records = toRuns(arr, type.of);
    checkRuns(type, records, path);
    splitFor.set(arr, records);
    return arr as PackedArrays[E];
  }
  if (type.min !== info.min || type.max !== info.max) {
    const { min, max } = type;
    for (let i = 0; i < arr.length; i++) {
      const v = arr[i]!;
      if (v < min || v > max) fail('ERR_FIELD_RANGE', `${path}[${i}]`, `${v} is outside [${min}, ${max}]`);
    }
  }
  return arr as PackedArrays[E];
}

/** Bytes of one run record (SPEC.md 4.2): first, count, step, each 32 bits little-endian. */
export const RUN_BYTES = 12;

/**
 * The typed array that run records hold (SPEC.md 4.2), built only once
 * checkRuns passed (so a count over maxLen is refused before anything is
 * allocated).
 */
function fromRuns<E extends PackedElement>(type: PackedType<E>, bytes: Uint8Array, path: string): PackedArrays[E] {
  const total = checkRuns(type, bytes, path);
  const info = PACKED_ELEMENTS[type.of];
  const signed = info.min < 0;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const runs = bytes.byteLength / RUN_BYTES;
  const out = new info.array(total);
  if (nativeRuns && !(out instanceof Uint8Array) && !(out instanceof Int8Array)) {
    nativeRuns.expandRuns(bytes, out);
    return out as PackedArrays[E];
  }
  for (let r = 0, i = 0; r < runs; r++) {
    const at = r * RUN_BYTES;
    let v = signed ? dv.getInt32(at, true) : dv.getUint32(at, true);
    const end = i + dv.getUint32(at + 4, true);
    const step = dv.getInt32(at + 8, true);
    if (step === 0) out.fill(v, i, end);
    else for (let k = i; k < end; k++, v += step) out[k] = v;
    i = end;
  }
  return out as PackedArrays[E];
}

/**
 * Checks run records against their declaration (SPEC.md 4.2): whole
 * records, count >= 1, at most maxLen elements in all, and each run's first
 * and last element in [min, max] (a run is monotonic, so every element
 * between is too). Returns the number of elements.
 */
function checkRuns(type: PackedType<PackedElement>, bytes: Uint8Array, path: string): number {
  if (bytes.byteLength % RUN_BYTES !== 0) fail('ERR_FIELD_TYPE', path, `${bytes.byteLength} bytes are not a whole number of ${RUN_BYTES}-byte run records`);
  const signed = PACKED_ELEMENTS[type.of].min < 0;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const runs = bytes.byteLength / RUN_BYTES;
  let total = 0;
  for (let r = 0; r < runs; r++) {
    const at = r * RUN_BYTES;
    const first = signed ? dv.getInt32(at, true) : dv.getUint32(at, true);
    const count = dv.getUint32(at + 4, true);
    const step = dv.getInt32(at + 8, true);
    if (count === 0) fail('ERR_FIELD_TYPE', path, `run ${r} has a count of 0`);
    if (count > type.maxLen - total) fail('ERR_FIELD_RANGE', path, `more than ${type.maxLen} elements`);
    const bad = firstOutOfRange(first, count, step, type.min, type.max);
    if (bad >= 0) fail('ERR_FIELD_RANGE', `${path}[${total + bad}]`, `${first + bad * step} is outside [${type.min}, ${type.max}]`);
    total += count;
  }
  return total;
}

/** The run records a typed array was checked as (validatePacked), for valueToWire to send without splitting it again. */
const splitFor = new WeakMap<AnyPacked, Uint8Array>();

/** Index of the first element of a run outside [min, max], or -1 (exact: count <= 2^20 and |step| < 2^31 stay within 2^53). */
function firstOutOfRange(first: number, count: number, step: number, min: number, max: number): number {
  if (first < min || first > max) return 0;
  const last = first + (count - 1) * step;
  if (last >= min && last <= max) return -1;
  return step > 0 ? Math.floor((max - first) / step) + 1 : Math.floor((first - min) / -step) + 1;
}

/**
 * The same run codec in native code: a process whose addon has one installs
 * it (src/memory/native.ts). Its records and elements are those of the code
 * below, byte for byte; fromRuns still makes every check before it expands.
 */
export interface NativeRunCodec {
  /** toRuns's records of `arr`. */
  encodeRuns(arr: Int16Array | Uint16Array | Int32Array | Uint32Array): Uint8Array;
  /** Writes the elements of checked `records` into `out` (exactly out.length of them). */
  expandRuns(records: Uint8Array, out: Int16Array | Uint16Array | Int32Array | Uint32Array): void;
}

let nativeRuns: NativeRunCodec | undefined;

/** Installs (or, with undefined, removes) the native run codec. */
export function useNativeRunCodec(codec: NativeRunCodec | undefined): void {
  nativeRuns = codec;
}

/** Run records being written (grown as needed; each call copies out what it wrote). */
let runScratch = new DataView(new ArrayBuffer(64 * RUN_BYTES));

/**
 * The run records of a typed array (SPEC.md 4.2), split greedily in one
 * pass: a run takes the difference of its first two elements as its step
 * (when it fits an i32) and extends while the next element keeps it.
 */
export function toRuns(arr: AnyPacked, of: PackedElement): Uint8Array {
  if (nativeRuns && of !== 'u8' && of !== 'i8') return nativeRuns.encodeRuns(arr as Exclude<AnyPacked, Uint8Array | Int8Array>);
  const signed = PACKED_ELEMENTS[of].min < 0;
  const n = arr.length;
  let dv = runScratch;
  let at = 0;
  for (let i = 0; i < n;) {
    const first = arr[i]!;
    let step = i + 1 < n ? arr[i + 1]! - first : 0;
    if (step > 0x7fffffff || step < -0x80000000) step = 0;
    let j = i + 1;
    for (let prev = first; j < n; j++) {
      const v = arr[j]!;
      if (v - prev !== step) break;
      prev = v;
    }
    if (at + RUN_BYTES > dv.byteLength) {
      const grown = new Uint8Array(dv.byteLength * 2);
      grown.set(new Uint8Array(dv.buffer, 0, at));
      dv = runScratch = new DataView(grown.buffer);
    }
    if (signed) dv.setInt32(at, first, true); else dv.setUint32(at, first, true);
    dv.setUint32(at + 4, j - i, true);
    dv.setInt32(at + 8, j - i > 1 ? step : 0, true);
    at += RUN_BYTES;
    i = j;
  }
  return new Uint8Array(dv.buffer.slice(0, at));
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
  if (type.kind === 'packed') {
    const arr = value as AnyPacked;
    if (type.layout !== 'runs') return toBytes(arr, type.of);
    const records = splitFor.get(arr) ?? toRuns(arr, type.of);
    splitFor.delete(arr);
    return records;
  }
  if (type.kind === 'struct') return packedToWire(type.fields, value as Record<string, unknown>);
  if (type.kind === 'array' && typeHasPacked(type.of)) return (value as unknown[]).map((v) => valueToWire(type.of, v));
  return value;
}
