/**
 * Checks decoded values against field declarations.
 *
 * Validation returns a fresh object holding only declared fields, so nothing
 * undeclared (including `__proto__` tricks) survives into the program.
 */
import { ProtocolError } from './errors.ts';
import { validatePacked } from './packed.ts';
import { WireFloat } from './plain-msgpack.ts';
import type { FieldType, Fields, Infer } from './schema.ts';

function fail(code: 'ERR_FIELD_TYPE' | 'ERR_FIELD_RANGE' | 'ERR_FIELD_MISSING' | 'ERR_UNKNOWN_FIELD', path: string, why: string): never {
  throw new ProtocolError(code, `${path}: ${why}`, path);
}

/** True for a plain object as produced by the MessagePack decoder for a map. */
export function isPlainMap(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || ArrayBuffer.isView(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Validates one value against a field type; returns the cleaned value. */
export function validateValue(type: FieldType, value: unknown, path: string): unknown {
  switch (type.kind) {
    case 'uint':
    case 'int':
      // Integers are MessagePack integers (SPEC 2): the decoder keeps floats apart, whatever their value.
      // A bigint is an integer beyond 2^53, outside every declared range.
      if (typeof value === 'bigint') fail('ERR_FIELD_RANGE', path, `${value} is outside [${type.min}, ${type.max}]`);
      if (typeof value !== 'number' || !Number.isInteger(value)) fail('ERR_FIELD_TYPE', path, `expected an integer, got ${describe(value)}`);
      if (value < type.min || value > type.max) fail('ERR_FIELD_RANGE', path, `${value} is outside [${type.min}, ${type.max}]`);
      return value;
    case 'bool':
      if (typeof value !== 'boolean') fail('ERR_FIELD_TYPE', path, `expected a boolean, got ${describe(value)}`);
      return value;
    case 'str':
      if (typeof value !== 'string') fail('ERR_FIELD_TYPE', path, `expected a string, got ${describe(value)}`);
      if (value.length > type.maxLen) fail('ERR_FIELD_RANGE', path, `string of ${value.length} characters exceeds ${type.maxLen}`);
      if (type.pattern && !type.pattern.test(value)) fail('ERR_FIELD_RANGE', path, `does not match ${type.pattern}`);
      return value;
    case 'bin':
      if (!(value instanceof Uint8Array)) fail('ERR_FIELD_TYPE', path, `expected bytes, got ${describe(value)}`);
      if (value.byteLength > type.maxLen) fail('ERR_FIELD_RANGE', path, `${value.byteLength} bytes exceed ${type.maxLen}`);
      if (type.minLen !== undefined && value.byteLength < type.minLen) fail('ERR_FIELD_RANGE', path, `${value.byteLength} bytes are fewer than ${type.minLen}`);
      // A plain Uint8Array view (no copy), whatever subclass the decoder produced.
      return value.constructor === Uint8Array ? value : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    case 'packed':
      return validatePacked(type, value, path);
    case 'enum':
      if (typeof value !== 'string') fail('ERR_FIELD_TYPE', path, `expected one of ${type.values.join('|')}, got ${describe(value)}`);
      if (!type.values.includes(value)) fail('ERR_FIELD_RANGE', path, `'${value}' is not one of ${type.values.join('|')}`);
      return value;
    case 'array': {
      if (!Array.isArray(value)) fail('ERR_FIELD_TYPE', path, `expected an array, got ${describe(value)}`);
      if (value.length > type.maxLen) fail('ERR_FIELD_RANGE', path, `array of ${value.length} elements exceeds ${type.maxLen}`);
      const of = type.of;
      // Fast path for the large integer arrays of grant batches.
      if (of.kind === 'uint' || of.kind === 'int') {
        for (let i = 0; i < value.length; i++) {
          const v: unknown = value[i];
          if (typeof v === 'bigint') fail('ERR_FIELD_RANGE', `${path}[${i}]`, `${v} is outside [${of.min}, ${of.max}]`);
          if (typeof v !== 'number' || !Number.isInteger(v)) fail('ERR_FIELD_TYPE', `${path}[${i}]`, `expected an integer, got ${describe(v)}`);
          if (v < of.min || v > of.max) fail('ERR_FIELD_RANGE', `${path}[${i}]`, `${v} is outside [${of.min}, ${of.max}]`);
        }
        return value;
      }
      return value.map((v, i) => validateValue(of, v, `${path}[${i}]`));
    }
    case 'struct':
      return validateStruct(type.fields, value, path);
  }
}

/**
 * Validates a map against declared fields, in the order SPEC.md section 4
 * gives: the declared fields in declaration order, each completely (missing,
 * type, range; a nested map or array element by element) before the next,
 * then any undeclared field. The first failure is thrown.
 */
export function validateStruct<F extends Fields>(fields: F, value: unknown, path: string): Infer<F> {
  if (!isPlainMap(value)) fail('ERR_FIELD_TYPE', path, `expected a map, got ${describe(value)}`);
  const out: Record<string, unknown> = {};
  for (const [name, field] of entriesOf(fields)) {
    if (!Object.hasOwn(value, name) || value[name] === undefined) {
      if (!field.optional) fail('ERR_FIELD_MISSING', `${path}.${name}`, 'required field is absent');
      continue;
    }
    out[name] = validateValue(field.type, value[name], `${path}.${name}`);
  }
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(fields, key)) fail('ERR_UNKNOWN_FIELD', `${path}.${key}`, 'field is not declared');
  }
  return out as Infer<F>;
}

const entriesCache = new WeakMap<Fields, ReadonlyArray<readonly [string, Fields[string]]>>();

/** Object.entries of a declaration, computed once: every frame validates its envelope and body against one. */
function entriesOf(fields: Fields): ReadonlyArray<readonly [string, Fields[string]]> {
  let entries = entriesCache.get(fields);
  if (entries === undefined) {
    entries = Object.entries(fields);
    entriesCache.set(fields, entries);
  }
  return entries;
}

function describe(value: unknown): string {
  if (value === null) return 'nil';
  if (Array.isArray(value)) return 'an array';
  if (ArrayBuffer.isView(value)) return 'bytes';
  if (value instanceof WireFloat) return `a float ${value.value}`;
  return typeof value === 'object' ? 'a map' : `${typeof value} ${JSON.stringify(value)?.slice(0, 40)}`;
}
