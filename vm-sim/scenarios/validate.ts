/**
 * Checks a scenario (from JSON or a module) against scenario.schema.json
 * before anything starts, so that a typo is an error naming the file, the
 * JSON path and the allowed values, not a failure halfway through a run.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import type { DomainSpec, Scenario } from './types.ts';
import { scenarioSchema } from './schema.ts';
import { didYouMean } from './suggest.ts';

/** A scenario (or its parameters) that does not follow the format: exit 2. */
export class ScenarioError extends Error {
  readonly code = 'ERR_BAD_SCENARIO';
  /** JSON path of the bad value (`steps[3].bytes`), when there is one. */
  readonly path: string | undefined;
  constructor(message: string, path?: string) {
    super(message);
    this.name = 'ScenarioError';
    this.path = path;
  }
}

type Json = Record<string, unknown>;

let compiled: { file: ValidateFunction; module: ValidateFunction; domain: ValidateFunction; schema: Json } | undefined;

/** The validators, compiled once: a whole file, a module's object (domains may be a function), one domain. */
function validators(): NonNullable<typeof compiled> {
  if (compiled) return compiled;
  const schema = scenarioSchema();
  const ajv = new Ajv2020({ discriminator: true, allErrors: true, verbose: true, strict: true, allowUnionTypes: true });
  ajv.addSchema(schema);
  const id = schema.$id as string;
  const file = ajv.getSchema(id)!;
  const module = ajv.compile({ ...schema, $id: id.replace(/\.json$/, '-module.json'), required: ['name', 'description'] });
  const domain = ajv.getSchema(`${id}#/$defs/domain`)!;
  compiled = { file, module, domain, schema };
  return compiled;
}

/** `steps[3].bytes` from `/steps/3/bytes`. */
export function jsonPath(pointer: string): string {
  return pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
}

/** Words for what a schema allows ("an integer from 1 to 100", "one of ro, rw", ...). */
export function describe(schema: Json | undefined, root: Json = validators().schema): string {
  if (!schema) return 'a value';
  if (typeof schema.$ref === 'string') {
    const name = schema.$ref.replace('#/$defs/', '');
    return describe(((root.$defs as Json)[name] as Json), root);
  }
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (Array.isArray(schema.enum)) return `one of ${schema.enum.map((v) => String(v)).join(', ')}`;
  if (Array.isArray(schema.anyOf)) return (schema.anyOf as Json[]).map((s) => describe(s, root)).join(', or ');
  if (schema.pattern === '^\\$[A-Za-z_][A-Za-z0-9_]*$') return 'a "$name" parameter reference';
  const type = schema.type;
  if (type === 'integer' || type === 'number') {
    const noun = type === 'integer' ? 'an integer' : 'a number';
    if (schema.minimum !== undefined && schema.maximum !== undefined) return `${noun} from ${String(schema.minimum)} to ${String(schema.maximum)}`;
    if (schema.minimum !== undefined) return `${noun} of at least ${String(schema.minimum)}`;
    return noun;
  }
  if (type === 'string') {
    if (schema.pattern === '^[A-Za-z][A-Za-z0-9_-]*$') return `a name (a letter, then letters, digits, - and _; at most ${String(schema.maxLength)})`;
    if (schema.pattern === '^[A-Za-z0-9_][A-Za-z0-9_.-]*$') return `a label (letters, digits, _ . -; at most ${String(schema.maxLength)})`;
    if (schema.pattern === '^[ -~]{4}$') return 'a 4-character fourcc';
    if (typeof schema.pattern === 'string' && schema.pattern.includes('kKmMgG')) return 'a size text ("4096", "64MiB", "2GiB")';
    if (schema.pattern === '^ERR_[A-Z0-9_]+$') return 'an error code (ERR_...)';
    return schema.maxLength !== undefined ? `a string of at most ${String(schema.maxLength)} characters` : 'a string';
  }
  if (type === 'boolean') return 'true or false';
  if (type === 'array') return 'a list';
  if (type === 'object') return 'an object';
  return 'a value';
}

/**
 * The one error to report: an unknown field first (a typo explains the rest), then the first error
 * outside any failing anyOf, else the outermost anyOf (its own error says everything that is allowed;
 * its branches' errors, also under $refs, are at its instance path or below).
 */
function pick(errors: ErrorObject[]): ErrorObject {
  const unknown = errors.find((e) => e.keyword === 'additionalProperties');
  if (unknown) return unknown;
  const anyOfs = errors.filter((e) => e.keyword === 'anyOf');
  const under = (e: ErrorObject, a: ErrorObject): boolean => e.instancePath === a.instancePath || e.instancePath.startsWith(`${a.instancePath}/`);
  const plain = errors.find((e) => e.keyword !== 'anyOf' && !anyOfs.some((a) => under(e, a)));
  if (plain) return plain;
  // ajv reports an anyOf after its branches, so of equal paths the last is the outermost.
  return anyOfs.reduce((best, a) => (a.instancePath.length <= best.instancePath.length ? a : best), anyOfs[0] ?? errors[0]!);
}

/** The message and JSON path of a failed validation. */
function message(errors: ErrorObject[], data: unknown, base = ''): { text: string; path: string } {
  const e = pick(errors);
  const text = messageText(e, data, base);
  const rel = jsonPath(e.instancePath);
  const extra = e.keyword === 'additionalProperties' ? `.${(e.params as { additionalProperty: string }).additionalProperty}` : '';
  return { text, path: (base && rel ? (rel.startsWith('[') ? `${base}${rel}` : `${base}.${rel}`) : base || rel) + extra };
}

function messageText(e: ErrorObject, data: unknown, base: string): string {
  const rel = jsonPath(e.instancePath);
  const path = base && rel ? (rel.startsWith('[') ? `${base}${rel}` : `${base}.${rel}`) : base || rel;
  const at = path ? `${path}: ` : '';
  const value = valueAt(data, e.instancePath);
  const shown = JSON.stringify(value);
  const parent = e.parentSchema as Json | undefined;
  switch (e.keyword) {
    case 'additionalProperties': {
      const field = (e.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys((parent?.properties as Json | undefined) ?? {}).filter((k) => k !== '$schema');
      return `${at}unknown field "${field}"${didYouMean(field, known)} (allowed: ${known.join(', ')})`;
    }
    case 'required':
      return `${at}missing field "${(e.params as { missingProperty: string }).missingProperty}"`;
    case 'discriminator': {
      const kinds = ((parent?.oneOf as Json[] | undefined) ?? []).map((s) => String(((s.properties as Json).do as Json).const));
      const tag = (e.params as { tagValue?: unknown }).tagValue;
      if (typeof tag !== 'string') return `${at}missing field "do" (one of ${kinds.join(', ')})`;
      return `${path}.do: "${tag}" is not a step${didYouMean(tag, kinds)} (allowed: ${kinds.join(', ')})`;
    }
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues.map(String);
      return `${at}${shown} is not allowed${typeof value === 'string' ? didYouMean(value, allowed) : ''} (allowed: ${allowed.join(', ')})`;
    }
    case 'anyOf':
      return `${at}${shown} is not allowed${typeof value === 'string' ? suggestionIn(parent, value) : ''} (allowed: ${describe(parent)})`;
    case 'propertyNames':
      return `${at}${e.message ?? 'bad name'}`;
    default:
      return `${at}${shown === undefined ? 'the value' : shown} is not allowed (allowed: ${describe(parent)})`;
  }
}

/** A "did you mean" from the enums of an anyOf's branches. */
function suggestionIn(schema: Json | undefined, value: string): string {
  const words = ((schema?.anyOf as Json[] | undefined) ?? []).flatMap((s) => (Array.isArray(s.enum) ? s.enum.map(String) : []));
  return words.length ? didYouMean(value, words) : '';
}

/** The value at a JSON pointer. */
function valueAt(data: unknown, pointer: string): unknown {
  let v = data;
  for (const p of pointer.split('/').slice(1)) v = (v as Record<string, unknown> | undefined)?.[p.replace(/~1/g, '/').replace(/~0/g, '~')];
  return v;
}

/** Throws a ScenarioError unless `data` passes `validate`. */
function check(validate: ValidateFunction, data: unknown, origin: string): void {
  if (validate(data)) return;
  const m = message(validate.errors ?? [], data);
  throw new ScenarioError(`${origin}: ${m.text}`, m.path);
}

/** Checks a scenario's form (before parameters are applied); returns it typed, or throws ScenarioError. */
export function validateScenario(raw: unknown, origin: string): Scenario {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ScenarioError(`${origin}: a scenario is an object {name, description, domains, steps} (got ${Array.isArray(raw) ? 'an array' : raw === null ? 'null' : typeof raw})`);
  }
  const s = raw as Record<string, unknown>;
  const { domains, run, ...data } = s;
  if (run !== undefined && typeof run !== 'function') throw new ScenarioError(`${origin}: run must be a function (TypeScript scenarios only)`);
  if (typeof domains === 'function') check(validators().module, data, origin);
  else check(validators().file, { ...data, ...(domains !== undefined ? { domains } : {}) }, origin);
  if (s.steps === undefined && run === undefined) throw new ScenarioError(`${origin}: missing field "steps" (or, in a TypeScript module, a run function)`);
  return s as unknown as Scenario;
}

/** Checks resolved domains (after parameters), for scenarios whose domains are a function. */
export function validateDomains(domains: unknown, origin: string): DomainSpec[] {
  if (!Array.isArray(domains) || domains.length === 0) throw new ScenarioError(`${origin}: domains must be a non-empty list of {name, memory}`);
  domains.forEach((d, i) => {
    const v = validators().domain;
    if (v(d)) return;
    const m = message(v.errors ?? [], d, `domains[${i}]`);
    throw new ScenarioError(`${origin}: ${m.text}`, m.path);
  });
  return domains as DomainSpec[];
}

/** Checks a whole scenario object as the file schema does (used after parameters are substituted). */
export function validateResolved(data: Json, origin: string): void {
  check(validators().file, data, origin);
}
