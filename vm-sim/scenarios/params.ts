/**
 * Scenario parameters: their declarations (type, range, default, meaning),
 * and the values of a run (defaults, overridden by --param NAME=VALUE),
 * each checked against its declaration.
 */
import type { ParamDecl, Params, ParamValue, Scenario } from './types.ts';
import { didYouMean } from './suggest.ts';
import { ScenarioError } from './validate.ts';

/** Every parameter's declaration; a bare default declares a parameter of its type with no range. */
export function paramDecls(scenario: Scenario): Record<string, ParamDecl> {
  const out: Record<string, ParamDecl> = {};
  for (const [name, p] of Object.entries(scenario.params ?? {})) {
    out[name] = typeof p === 'object'
      ? p
      : { type: typeof p === 'number' ? (Number.isInteger(p) ? 'integer' : 'number') : typeof p === 'boolean' ? 'boolean' : 'string', default: p, description: '' };
  }
  return out;
}

/** The default of every parameter. */
export function paramDefaults(scenario: Scenario): Params {
  return Object.fromEntries(Object.entries(paramDecls(scenario)).map(([k, d]) => [k, d.default]));
}

/** Words for a declaration's allowed values. */
export function allowedText(d: ParamDecl): string {
  if (d.type === 'boolean') return 'true or false';
  if (d.type === 'string') return d.enum ? `one of ${d.enum.join(', ')}` : 'any text';
  const noun = d.type === 'integer' ? 'an integer' : 'a number';
  if (d.minimum !== undefined && d.maximum !== undefined) return `${noun} from ${d.minimum} to ${d.maximum}`;
  if (d.minimum !== undefined) return `${noun} of at least ${d.minimum}`;
  if (d.maximum !== undefined) return `${noun} of at most ${d.maximum}`;
  return noun;
}

/** The reason `value` does not fit `d`, or undefined. */
function misfit(value: ParamValue, d: ParamDecl): string | undefined {
  const ok = d.type === 'boolean' ? typeof value === 'boolean'
    : d.type === 'string' ? typeof value === 'string' && (!d.enum || d.enum.includes(value))
      : typeof value === 'number' && Number.isFinite(value) && (d.type === 'number' || Number.isSafeInteger(value))
        && (d.minimum === undefined || value >= d.minimum) && (d.maximum === undefined || value <= d.maximum);
  return ok ? undefined : `${JSON.stringify(value)} is not allowed${typeof value === 'string' && d.enum ? didYouMean(value, d.enum) : ''} (allowed: ${allowedText(d)})`;
}

/** Checks the declarations themselves (a default outside its own range is the scenario's bug). */
export function checkDecls(scenario: Scenario, origin: string): void {
  for (const [name, d] of Object.entries(paramDecls(scenario))) {
    const why = misfit(d.default, d);
    if (why) throw new ScenarioError(`${origin}: params.${name}.default: ${why}`);
  }
}

/** Parses one --param value as its declaration's type. */
function parseValue(text: string, d: ParamDecl): ParamValue {
  if (d.type === 'boolean') return text === 'true' ? true : text === 'false' ? false : text;
  if (d.type === 'string') return text;
  // Plain decimal or exponent notation only: "0x10", "", " 5" and "Infinity" are not numbers here.
  return /^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(text) ? Number(text) : text;
}

/** The run's parameters: defaults, overridden by "name=value" pairs; every value checked against its declaration. */
export function resolveParams(scenario: Scenario, pairs: readonly string[]): Params {
  const decls = paramDecls(scenario);
  const out = paramDefaults(scenario);
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new ScenarioError(`--param ${pair}: expected NAME=VALUE`);
    const name = pair.slice(0, at);
    const d = decls[name];
    const names = Object.keys(decls);
    if (!d) throw new ScenarioError(`--param ${name}: scenario ${scenario.name} has no parameter "${name}"${didYouMean(name, names)} (parameters: ${names.join(', ') || 'none'})`);
    const value = parseValue(pair.slice(at + 1), d);
    const why = misfit(value, d);
    if (why) throw new ScenarioError(`--param ${name}: ${why}`);
    out[name] = value;
  }
  return out;
}
