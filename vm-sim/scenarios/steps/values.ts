/**
 * Parameter substitution and value checks for steps: "$name" strings become
 * parameter values, numbers may be written as numbers or numeric strings.
 */
import type { Params } from '../types.ts';

/** A bad scenario value. */
export function badValue(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_BAD_SCENARIO' });
}

/** Replaces every string "$name" (the whole string) by params[name], recursively. */
export function substitute<T>(value: T, params: Params): T {
  if (typeof value === 'string' && value.startsWith('$') && /^\$[A-Za-z_][A-Za-z0-9_]*$/.test(value)) {
    const name = value.slice(1);
    if (!(name in params)) throw badValue(`unknown parameter ${value}`);
    return params[name] as T;
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, params)) as T;
  if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, params)])) as T;
  }
  return value;
}

/** A non-negative integer from a number or numeric string. */
export function int(value: unknown, what: string, dflt?: number): number {
  const v = value ?? dflt;
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw badValue(`${what} must be a non-negative integer (got ${JSON.stringify(value)})`);
  return n;
}

/** A boolean from a boolean or "true"/"false". */
export function bool(value: unknown, what: string, dflt: boolean): boolean {
  if (value === undefined) return dflt;
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'false') return value === 'true';
  throw badValue(`${what} must be true or false (got ${JSON.stringify(value)})`);
}

/** Deep partial match: every key of `expected` must equal (recursively) in `actual`. Returns the first mismatch, or undefined. */
export function mismatch(actual: unknown, expected: unknown, path = 'result'): string | undefined {
  if (expected !== null && typeof expected === 'object' && !Array.isArray(expected)) {
    if (actual === null || typeof actual !== 'object') return `${path} is ${JSON.stringify(actual)}, expected an object`;
    for (const [k, v] of Object.entries(expected)) {
      const m = mismatch((actual as Record<string, unknown>)[k], v, `${path}.${k}`);
      if (m) return m;
    }
    return undefined;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) return `${path} is ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`;
    for (let i = 0; i < expected.length; i++) {
      const m = mismatch(actual[i], expected[i], `${path}[${i}]`);
      if (m) return m;
    }
    return undefined;
  }
  return Object.is(actual, expected) ? undefined : `${path} is ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`;
}
