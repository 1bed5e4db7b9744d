/**
 * Field declarations for wire messages.
 *
 * Every field that crosses a process boundary is declared once here, with its
 * type, bounds and documentation. The same declaration drives validation of
 * incoming values (`validateStruct`), the TypeScript type of the decoded value
 * (`Infer`), and the field tables in SPEC.md.
 */

/** An unsigned integer in [min, max]. */
export interface UintType { readonly kind: 'uint'; readonly min: number; readonly max: number }
/** A signed integer in [min, max]. */
export interface IntType { readonly kind: 'int'; readonly min: number; readonly max: number }
/** true or false. */
export interface BoolType { readonly kind: 'bool' }
/** A UTF-8 string of at most maxLen characters, optionally matching a pattern. */
export interface StrType { readonly kind: 'str'; readonly maxLen: number; readonly pattern?: RegExp }
/** A byte string (MessagePack bin) of at most maxLen bytes (and, if minLen is given, at least minLen). */
export interface BinType { readonly kind: 'bin'; readonly maxLen: number; readonly minLen?: number }
/** Element types of a packed array: unsigned or signed integers of 8, 16 or 32 bits. */
export type PackedElement = 'u8' | 'u16' | 'u32' | 'i8' | 'i16' | 'i32';
/** The typed array a packed array of each element type decodes to. */
export interface PackedArrays {
  u8: Uint8Array; u16: Uint16Array; u32: Uint32Array; i8: Int8Array; i16: Int16Array; i32: Int32Array;
}
/**
 * How a packed array's bin holds its elements (SPEC.md 4.1, 4.2): `elements`
 * back to back, or `runs`, records of arithmetic runs (first, count, step).
 */
export type PackedLayout = 'elements' | 'runs';
/**
 * A typed binary array: a MessagePack bin holding at most maxLen elements of
 * one integer type, each element in [min, max], laid out as `layout` says:
 * little-endian elements with no padding (byte length = count x element
 * size), or run records. Decodes to a typed array either way.
 */
export interface PackedType<E extends PackedElement = PackedElement> {
  readonly kind: 'packed'; readonly of: E; readonly maxLen: number; readonly min: number; readonly max: number;
  readonly layout: PackedLayout;
}
/** One of a fixed set of strings. */
export interface EnumType<V extends string = string> { readonly kind: 'enum'; readonly values: readonly V[] }
/** An array of at most maxLen elements of one type. */
export interface ArrayType<T extends FieldType = FieldType> { readonly kind: 'array'; readonly of: T; readonly maxLen: number }
/** A map with declared fields; any undeclared key is an error. */
export interface StructType<F extends Fields = Fields> { readonly kind: 'struct'; readonly fields: F }

/** Any declared field type. */
export type FieldType = UintType | IntType | BoolType | StrType | BinType | PackedType | EnumType | ArrayType | StructType;

/** A named field: its type, whether it may be absent, the version it appeared in, and what it means. */
export interface Field<T extends FieldType = FieldType, O extends boolean = boolean> {
  readonly type: T;
  readonly optional: O;
  readonly doc: string;
  /** Protocol version that introduced the field (defaults to the message's). */
  readonly since?: number;
}

/** The fields of a struct, by name. */
export type Fields = Readonly<Record<string, Field>>;

/** The TypeScript value type of a field type. */
export type InferType<T extends FieldType> =
  T extends UintType | IntType ? number
  : T extends BoolType ? boolean
  : T extends StrType ? string
  : T extends BinType ? Uint8Array
  : T extends PackedType<infer E> ? PackedArrays[E]
  : T extends EnumType<infer V> ? V
  : T extends ArrayType<infer E> ? InferType<E>[]
  : T extends StructType<infer F> ? Infer<F>
  : never;

type RequiredKeys<F extends Fields> = { [K in keyof F]: F[K]['optional'] extends true ? never : K }[keyof F];
type OptionalKeys<F extends Fields> = { [K in keyof F]: F[K]['optional'] extends true ? K : never }[keyof F];

/** The TypeScript type of a struct with fields F. */
export type Infer<F extends Fields> =
  { [K in RequiredKeys<F>]: InferType<F[K]['type']> } &
  { [K in OptionalKeys<F>]?: InferType<F[K]['type']> };

/** Size in bytes, range and typed-array constructor of each packed element type. */
export const PACKED_ELEMENTS = {
  u8: { bytes: 1, min: 0, max: 0xff, array: Uint8Array },
  u16: { bytes: 2, min: 0, max: 0xffff, array: Uint16Array },
  u32: { bytes: 4, min: 0, max: 0xffffffff, array: Uint32Array },
  i8: { bytes: 1, min: -0x80, max: 0x7f, array: Int8Array },
  i16: { bytes: 2, min: -0x8000, max: 0x7fff, array: Int16Array },
  i32: { bytes: 4, min: -0x80000000, max: 0x7fffffff, array: Int32Array },
} as const satisfies Record<PackedElement, { bytes: number; min: number; max: number; array: unknown }>;

/** Builders for field types. */
export const t = {
  uint: (max: number, min = 0): UintType => ({ kind: 'uint', min, max }),
  int: (min: number, max: number): IntType => ({ kind: 'int', min, max }),
  bool: (): BoolType => ({ kind: 'bool' }),
  str: (maxLen: number, pattern?: RegExp): StrType => (pattern ? { kind: 'str', maxLen, pattern } : { kind: 'str', maxLen }),
  bin: (maxLen: number, minLen?: number): BinType => (minLen === undefined ? { kind: 'bin', maxLen } : { kind: 'bin', maxLen, minLen }),
  /** A packed array of maxLen elements at most, each in [min, max] (default: the element type's whole range). */
  packed: <E extends PackedElement>(of: E, maxLen: number, min: number = PACKED_ELEMENTS[of].min, max: number = PACKED_ELEMENTS[of].max): PackedType<E> =>
    packedType(of, maxLen, min, max, 'elements'),
  /** The same array carried as run records (SPEC.md 4.2): for the per-entry answers of the backend, which come in long runs. */
  runs: <E extends Exclude<PackedElement, 'u8' | 'i8'>>(of: E, maxLen: number, min: number = PACKED_ELEMENTS[of].min, max: number = PACKED_ELEMENTS[of].max): PackedType<E> =>
    packedType(of, maxLen, min, max, 'runs'),
  enum: <V extends string>(...values: V[]): EnumType<V> => ({ kind: 'enum', values }),
  array: <T extends FieldType>(of: T, maxLen: number): ArrayType<T> => ({ kind: 'array', of, maxLen }),
  struct: <F extends Fields>(fields: F): StructType<F> => ({ kind: 'struct', fields }),
};

function packedType<E extends PackedElement>(of: E, maxLen: number, min: number, max: number, layout: PackedLayout): PackedType<E> {
  const range = PACKED_ELEMENTS[of];
  if (!(min >= range.min && max <= range.max && min <= max)) throw new RangeError(`packed ${of} bounds [${min}, ${max}] are outside [${range.min}, ${range.max}]`);
  return { kind: 'packed', of, maxLen, min, max, layout };
}

/** A required field. */
export function req<T extends FieldType>(type: T, doc: string, since?: number): Field<T, false> {
  return since === undefined ? { type, optional: false, doc } : { type, optional: false, doc, since };
}

/** An optional field. */
export function opt<T extends FieldType>(type: T, doc: string, since?: number): Field<T, true> {
  return since === undefined ? { type, optional: true, doc } : { type, optional: true, doc, since };
}

/** Common scalar types, named after what they carry. */
export const U8 = t.uint(0xff);
export const U16 = t.uint(0xffff);
export const U32 = t.uint(0xffffffff);
export const I16 = t.int(-0x8000, 0x7fff);
