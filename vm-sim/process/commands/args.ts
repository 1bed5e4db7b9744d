/** Checks of command arguments: each failure is ERR_BAD_ARGUMENT naming the argument. */

function bad(name: string, want: string, got: unknown): Error {
  return Object.assign(new Error(`argument ${name} must be ${want} (got ${typeof got === 'object' ? Object.prototype.toString.call(got) : String(got)})`), { code: 'ERR_BAD_ARGUMENT' });
}

/** A non-negative integer argument (with an optional default). */
export function argInt(args: Record<string, unknown>, name: string, dflt?: number): number {
  const v = args[name] ?? dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw bad(name, 'a non-negative integer', v);
  return v;
}

/** A boolean argument (with an optional default). */
export function argBool(args: Record<string, unknown>, name: string, dflt?: boolean): boolean {
  const v = args[name] ?? dflt;
  if (typeof v !== 'boolean') throw bad(name, 'a boolean', v);
  return v;
}

/** A list of non-negative 32-bit integers: a Uint32Array or an array of numbers. */
export function argU32s(args: Record<string, unknown>, name: string): Uint32Array {
  const v = args[name];
  if (v instanceof Uint32Array) return v;
  if (Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 0xffffffff)) return Uint32Array.from(v as number[]);
  throw bad(name, 'a Uint32Array or an array of 32-bit unsigned integers', v);
}
