/** Scenario parameters from the command line (--param name=value), typed after the defaults. */
import type { Params, ParamValue } from '../scenarios/types.ts';

/** Parses "name=value" pairs; a value takes the type of the default when there is one. */
export function parseParams(pairs: readonly string[], defaults: Params = {}): Params {
  const out: Params = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new RangeError(`--param ${pair}: expected name=value`);
    const name = pair.slice(0, at);
    const text = pair.slice(at + 1);
    out[name] = coerce(text, defaults[name], name);
  }
  return out;
}

function coerce(text: string, dflt: ParamValue | undefined, name: string): ParamValue {
  const kind = dflt === undefined ? undefined : typeof dflt;
  if (kind === 'boolean' || (kind === undefined && (text === 'true' || text === 'false'))) {
    if (text !== 'true' && text !== 'false') throw new RangeError(`--param ${name}: expected true or false`);
    return text === 'true';
  }
  if (kind === 'number' || (kind === undefined && /^-?\d+(\.\d+)?$/.test(text))) {
    const n = Number(text);
    if (!Number.isFinite(n)) throw new RangeError(`--param ${name}: expected a number`);
    return n;
  }
  return text;
}
