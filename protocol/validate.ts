/**
 * Checks decoded values against field declarations.
 *
 * Validation returns an object holding only declared fields, so nothing
 * undeclared (including `__proto__` tricks) survives into the program: a
 * fresh one for a value the program built (encoding), the decoder's own map
 * for a frame just decoded (every key of it has then been checked to be
 * declared, and the decoder makes every map anew, so nothing else holds it).
 *
 * The checks build no path while they succeed: a failure carries the path
 * of the offending value from where it was found up to the field validated,
 * and is turned into a ProtocolError with the whole path (SPEC 4, "Field
 * paths") only then. A batch of 65,536 elements is so checked without a
 * string or an object per element.
 */
import { ProtocolError } from './errors.ts';
import { validatePacked } from './packed.ts';
import { WireFloat } from './plain-msgpack.ts';
import type { FieldType, Fields, Infer } from './schema.ts';

type FieldErrorCode = 'ERR_FIELD_TYPE' | 'ERR_FIELD_RANGE' | 'ERR_FIELD_MISSING' | 'ERR_UNKNOWN_FIELD';

/** A failed check below the value being validated: `steps` is its path from there, innermost first (`.name`, `[i]`). */
class Invalid {
  readonly steps: string[] = [];
  constructor(readonly code: FieldErrorCode, readonly why: string) {}
}

function invalid(code: FieldErrorCode, why: string): never {
  throw new Invalid(code, why);
}

/** The ProtocolError of a failed check, with the whole path. Anything else is rethrown. */
function asProtocolError(e: unknown, path: string): never {
  if (!(e instanceof Invalid)) throw e;
  let full = path;
  for (let i = e.steps.length - 1; i >= 0; i--) full += e.steps[i];
  throw new ProtocolError(e.code, `${full}: ${e.why}`, full);
}

/** True for a plain object as produced by the MessagePack decoder for a map. */
export function isPlainMap(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || ArrayBuffer.isView(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Validates one value against a field type; returns the cleaned value. */
export function validateValue(type: FieldType, value: unknown, path: string): unknown {
  try {
    return check(type, value, false);
  } catch (e) {
    return asProtocolError(e, path);
  }
}

/**
 * Validates a map against declared fields, in the order SPEC.md section 4
 * gives: the declared fields in declaration order, each completely (missing,
 * type, range; a nested map or array element by element) before the next,
 * then any undeclared field. The first failure is thrown. Returns a fresh
 * object of the declared fields, in declaration order.
 */
export function validateStruct<F extends Fields>(fields: F, value: unknown, path: string): Infer<F> {
  try {
    return checkStruct(fields, value, false) as Infer<F>;
  } catch (e) {
    return asProtocolError(e, path);
  }
}

/**
 * validateStruct for a map the frame decoder has just built
 * (decodePlainMsgpack): the same checks in the same order, and the same
 * result, but the decoder's maps are kept (with each field's cleaned value)
 * instead of copied.
 */
export function validateDecoded<F extends Fields>(fields: F, value: unknown, path: string): Infer<F> {
  try {
    return checkStruct(fields, value, true) as Infer<F>;
  } catch (e) {
    return asProtocolError(e, path);
  }
}

/**
 * validateDecoded in slices, for a body that may be a large batch: a
 * generator that yields after each `budget` values checked in a field that
 * is an array of maps or arrays (counting each element as the most values
 * its declaration allows), so that its caller can let the event loop run in
 * between (SPEC 3.7, "work per frame"). Fields are checked in the same
 * order as validateStruct, so the first failure is the same; it is thrown
 * as a ProtocolError. Returns the validated body.
 */
export function* validateDecodedInSlices<F extends Fields>(fields: F, value: unknown, path: string, budget: number): Generator<void, Infer<F>, void> {
  try {
    if (!isPlainMap(value)) invalid('ERR_FIELD_TYPE', `expected a map, got ${describe(value)}`);
    for (const [name, field] of entriesOf(fields)) {
      if (!Object.hasOwn(value, name) || value[name] === undefined) {
        if (!field.optional) fieldAt(name, new Invalid('ERR_FIELD_MISSING', 'required field is absent'));
        continue;
      }
      const type = field.type;
      const v = value[name];
      if (type.kind !== 'array' || !Array.isArray(v) || isIntType(type.of) || v.length > type.maxLen) {
        value[name] = checkField(name, type, v, true);
        continue;
      }
      const of = type.of;
      const per = Math.max(1, Math.floor(budget / (1 + valuesInside(of))));
      let i = 0;
      try {
        for (; i < v.length; i++) {
          v[i] = check(of, v[i], true);
          if ((i + 1) % per === 0 && i + 1 < v.length) yield;
        }
      } catch (e) {
        if (e instanceof Invalid) {
          e.steps.push(`[${i}]`);
          fieldAt(name, e);
        }
        throw e;
      }
    }
    checkUndeclared(fields, value);
    return value as Infer<F>;
  } catch (e) {
    return asProtocolError(e, path);
  }
}

function fieldAt(name: string, e: Invalid): never {
  e.steps.push(`.${name}`);
  throw e;
}

function checkField(name: string, type: FieldType, value: unknown, reuse: boolean): unknown {
  try {
    return check(type, value, reuse);
  } catch (e) {
    if (e instanceof Invalid) fieldAt(name, e);
    throw e;
  }
}

function isIntType(type: FieldType): boolean {
  return type.kind === 'uint' || type.kind === 'int';
}

/** Values inside one value of this type at most (a map entry counts its key and its value): the work of checking it. */
function valuesInside(type: FieldType): number {
  switch (type.kind) {
    case 'array': return type.maxLen * (1 + valuesInside(type.of));
    case 'struct': {
      let n = 0;
      for (const [, f] of entriesOf(type.fields)) n += 2 + valuesInside(f.type);
      return n;
    }
    default: return 0;
  }
}

function check(type: FieldType, value: unknown, reuse: boolean): unknown {
  switch (type.kind) {
    case 'uint':
    case 'int':
      // Integers are MessagePack integers (SPEC 2): the decoder keeps floats apart, whatever their value.
      // A bigint is an integer beyond 2^53, outside every declared range.
      if (typeof value === 'bigint') invalid('ERR_FIELD_RANGE', `${value} is outside [${type.min}, ${type.max}]`);
      if (typeof value !== 'number' || !Number.isInteger(value)) invalid('ERR_FIELD_TYPE', `expected an integer, got ${describe(value)}`);
      if (value < type.min || value > type.max) invalid('ERR_FIELD_RANGE', `${value} is outside [${type.min}, ${type.max}]`);
      return value;
    case 'bool':
      if (typeof value !== 'boolean') invalid('ERR_FIELD_TYPE', `expected a boolean, got ${describe(value)}`);
      return value;
    case 'str':
      if (typeof value !== 'string') invalid('ERR_FIELD_TYPE', `expected a string, got ${describe(value)}`);
      if (value.length > type.maxLen) invalid('ERR_FIELD_RANGE', `string of ${value.length} characters exceeds ${type.maxLen}`);
      if (type.pattern && !type.pattern.test(value)) invalid('ERR_FIELD_RANGE', `does not match ${type.pattern}`);
      return value;
    case 'bin':
      if (!(value instanceof Uint8Array)) invalid('ERR_FIELD_TYPE', `expected bytes, got ${describe(value)}`);
      if (value.byteLength > type.maxLen) invalid('ERR_FIELD_RANGE', `${value.byteLength} bytes exceed ${type.maxLen}`);
      if (type.minLen !== undefined && value.byteLength < type.minLen) invalid('ERR_FIELD_RANGE', `${value.byteLength} bytes are fewer than ${type.minLen}`);
      // A plain Uint8Array view (no copy), whatever subclass the decoder produced.
      return value.constructor === Uint8Array ? value : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    case 'packed':
      try {
        return validatePacked(type, value, '');
      } catch (e) {
        // validatePacked names the element it refused (`[i]`) after the path it was given.
        if (e instanceof ProtocolError) {
          const failure = new Invalid(e.code as FieldErrorCode, e.message.slice(e.message.indexOf(': ') + 2));
          if (e.field) failure.steps.push(e.field);
          throw failure;
        }
        throw e;
      }
    case 'enum':
      if (typeof value !== 'string') invalid('ERR_FIELD_TYPE', `expected one of ${type.values.join('|')}, got ${describe(value)}`);
      if (!type.values.includes(value)) invalid('ERR_FIELD_RANGE', `'${value}' is not one of ${type.values.join('|')}`);
      return value;
    case 'array':
      return checkArray(type.of, type.maxLen, value, reuse);
    case 'struct':
      return checkStruct(type.fields, value, reuse);
  }
}

function checkArray(of: FieldType, maxLen: number, value: unknown, reuse: boolean): unknown[] {
  if (!Array.isArray(value)) invalid('ERR_FIELD_TYPE', `expected an array, got ${describe(value)}`);
  if (value.length > maxLen) invalid('ERR_FIELD_RANGE', `array of ${value.length} elements exceeds ${maxLen}`);
  let i = 0;
  try {
    // Fast path for the large integer arrays of grant batches.
    if (of.kind === 'uint' || of.kind === 'int') {
      for (; i < value.length; i++) {
        const v: unknown = value[i];
        if (typeof v !== 'number' || !Number.isInteger(v) || v < of.min || v > of.max) check(of, v, reuse);
      }
      return value;
    }
    const out = reuse ? value : new Array<unknown>(value.length);
    if (of.kind === 'struct') {
      // Batches of maps (GNTTAB_COPY's ops): the declaration's entries looked up once for all elements.
      const entries = entriesOf(of.fields);
      for (; i < value.length; i++) out[i] = checkStruct(of.fields, value[i], reuse, entries);
      return out;
    }
    for (; i < value.length; i++) out[i] = check(of, value[i], reuse);
    return out;
  } catch (e) {
    if (e instanceof Invalid) e.steps.push(`[${i}]`);
    throw e;
  }
}

function checkStruct(fields: Fields, value: unknown, reuse: boolean, entries = entriesOf(fields)): Record<string, unknown> {
  if (!isPlainMap(value)) invalid('ERR_FIELD_TYPE', `expected a map, got ${describe(value)}`);
  const out: Record<string, unknown> = reuse ? value : {};
  for (const [name, field] of entries) {
    if (!Object.hasOwn(value, name) || value[name] === undefined) {
      if (!field.optional) fieldAt(name, new Invalid('ERR_FIELD_MISSING', 'required field is absent'));
      continue;
    }
    out[name] = checkField(name, field.type, value[name], reuse);
  }
  checkUndeclared(fields, value);
  return out;
}

/** Refuses the first key that the declaration does not name (ERR_UNKNOWN_FIELD), without listing the keys. */
function checkUndeclared(fields: Fields, value: Record<string, unknown>): void {
  for (const key in value) {
    if (Object.hasOwn(value, key) && !Object.hasOwn(fields, key)) fieldAt(key, new Invalid('ERR_UNKNOWN_FIELD', 'field is not declared'));
  }
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
