/**
 * Everything about a scenario that can be checked before any process starts,
 * with the run's parameters applied: every "$name" names a parameter, every
 * substituted value passes the schema like a literal, sizes are in range and
 * fit the exporter's memory, steps name declared domains, an outside domain
 * acts only in the steps it can take part in, and (for purely declarative
 * scenarios) buffers are exported before they are used.
 */
import { FORMATS } from '../process/sim/framebuffer-info.ts';
import { checkDecls } from './params.ts';
import { LIMITS } from './schema.ts';
import { didYouMean } from './suggest.ts';
import type { DomainSpec, Params, Scenario } from './types.ts';
import { parseBytes } from './units.ts';
import { ScenarioError, validateDomains, validateResolved, validateScenario } from './validate.ts';

type Json = Record<string, unknown>;

/** Path -> parameter name, for every "$name" that was substituted. */
type Origins = Map<string, string>;

const REF = /^\$[A-Za-z_][A-Za-z0-9_]*$/;

/** Replaces "$name" strings by parameter values, recording where each came from; an unknown name is an error at its path. */
function substituteAt(value: unknown, params: Params, path: string, origins: Origins, origin: string): unknown {
  if (typeof value === 'string' && REF.test(value)) {
    const name = value.slice(1);
    if (!(name in params)) {
      const names = Object.keys(params);
      throw new ScenarioError(`${origin}: ${path}: unknown parameter "${value}"${didYouMean(name, names)} (parameters: ${names.join(', ') || 'none'})`, path);
    }
    origins.set(path, name);
    return params[name];
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteAt(v, params, `${path}[${i}]`, origins, origin));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteAt(v, params, path ? `${path}.${k}` : k, origins, origin)]));
  }
  return value;
}

/** Adds "(from parameter X = V)" to an error whose value came from a parameter. */
function withOrigin(e: unknown, origins: Origins, params: Params): never {
  if (e instanceof ScenarioError && e.path !== undefined) {
    const name = origins.get(e.path);
    if (name !== undefined) throw new ScenarioError(`${e.message} (from parameter ${name} = ${JSON.stringify(params[name])})`, e.path);
  }
  throw e;
}

function bytesAt(value: unknown, path: string, origin: string, min: number, max: number): number {
  let n: number;
  try {
    n = parseBytes(value as number | string, path);
  } catch {
    throw new ScenarioError(`${origin}: ${path}: ${JSON.stringify(value)} is not a size (allowed: a byte count, or text such as "64MiB")`, path);
  }
  if (n < min || n > max) throw new ScenarioError(`${origin}: ${path}: ${JSON.stringify(value)} is ${n} bytes (allowed: ${min} to ${max} bytes)`, path);
  return n;
}

const DOMAIN_FIELDS = ['from', 'to', 'into', 'in', 'domain'] as const;

/**
 * The fields that name the domain doing a step's work, per step kind, and
 * those an outside domain may fill: it is driven only by the commands of
 * SPEC.md Appendix B.3 (import, read, release) or killed; as a peer (export
 * `to`, unexport `to`, wait `to`, "@domid:NAME") any step may name it.
 */
const ACTING: Record<string, readonly string[]> = {
  export: ['from'], import: ['into'], write: ['in'], verify: ['in'], handoff: ['from', 'to'], release: ['in'],
  unexport: ['in'], free: ['in'], query: ['in'], kill: ['domain'], wait: ['in'], call: ['in'],
};
const OUTSIDE_MAY: Record<string, readonly string[]> = { import: ['into'], verify: ['in'], release: ['in'], kill: ['domain'] };

/** Checks the steps (already substituted): domains declared, sizes, framebuffer shapes, buffers exported before use. */
function checkSteps(steps: Json[], path: string, domains: Map<string, number>, outside: ReadonlySet<string>, exported: Set<string> | undefined, origin: string): void {
  steps.forEach((s, i) => {
    const at = `${path}[${i}]`;
    for (const f of DOMAIN_FIELDS) {
      const v = s[f];
      if (v === undefined) continue;
      (Array.isArray(v) ? v : [v]).forEach((n, j) => {
        const p = Array.isArray(v) ? `${at}.${f}[${j}]` : `${at}.${f}`;
        if (!domains.has(n as string)) throw new ScenarioError(`${origin}: ${p}: no domain "${String(n)}"${didYouMean(String(n), domains.keys())} (declared: ${[...domains.keys()].join(', ')})`, p);
        const kind = String(s.do);
        if (outside.has(n as string) && ACTING[kind]?.includes(f) && !OUTSIDE_MAY[kind]?.includes(f)) {
          const may = Object.entries(OUTSIDE_MAY).map(([k, fs]) => `${k} ${fs.join(', ')}`).join('; ');
          throw new ScenarioError(`${origin}: ${p}: "${String(n)}" is an outside domain: it cannot be \`${f}\` of a ${kind} step (an outside domain may be: ${may}; and any step's peer)`, p);
        }
      });
    }
    if (s.do === 'export') checkExport(s, at, domains, origin);
    const labels = [s.buffer, ...(Array.isArray(s.buffers) ? s.buffers : [])].filter((b): b is string => typeof b === 'string');
    if (exported) {
      if (s.do === 'export') exported.add(s.buffer as string);
      else for (const b of labels) if (!exported.has(b)) throw new ScenarioError(`${origin}: ${at}.buffer: buffer "${b}" is used before any step exports it${didYouMean(b, exported)}`, `${at}.buffer`);
    }
    if (s.do === 'repeat') checkSteps(s.steps as Json[], `${at}.steps`, domains, outside, exported, origin);
  });
}

function checkExport(s: Json, at: string, domains: Map<string, number>, origin: string): void {
  const framebuffer = s.width !== undefined || s.height !== undefined;
  if (framebuffer && s.bytes !== undefined) throw new ScenarioError(`${origin}: ${at}: give bytes, or width and height, not both`, at);
  if (!framebuffer && s.bytes === undefined) throw new ScenarioError(`${origin}: ${at}: missing field "bytes" (or width and height)`, `${at}.bytes`);
  if (framebuffer && (s.width === undefined || s.height === undefined)) throw new ScenarioError(`${origin}: ${at}: missing field "${s.width === undefined ? 'width' : 'height'}" (a framebuffer needs both)`, at);
  if (!framebuffer && (s.format !== undefined || s.stride !== undefined)) throw new ScenarioError(`${origin}: ${at}.${s.format !== undefined ? 'format' : 'stride'}: only a framebuffer (width, height) has one`, at);
  let bytes: number;
  if (framebuffer) {
    const bpp = FORMATS[String(s.format ?? 'RGBA8888')]?.bpp ?? 1;
    const row = (s.width as number) * bpp;
    const stride = (s.stride as number | undefined) ?? row;
    if (stride < row) throw new ScenarioError(`${origin}: ${at}.stride: ${stride} is less than a row of ${String(s.width)} pixels (allowed: at least ${row})`, `${at}.stride`);
    bytes = stride * (s.height as number);
    if (bytes > LIMITS.maxBufferBytes) throw new ScenarioError(`${origin}: ${at}: a ${String(s.width)}x${String(s.height)} framebuffer is ${bytes} bytes (allowed: at most ${LIMITS.maxBufferBytes})`, at);
  } else {
    bytes = bytesAt(s.bytes, `${at}.bytes`, origin, 1, LIMITS.maxBufferBytes);
  }
  const memory = domains.get(s.from as string);
  if (memory !== undefined && bytes > memory) {
    throw new ScenarioError(`${origin}: ${at}${framebuffer ? '' : '.bytes'}: ${bytes} bytes do not fit in ${String(s.from)}'s memory of ${memory} bytes`, framebuffer ? at : `${at}.bytes`);
  }
}

/** The domains with parameters applied, checked. */
function resolveDomainSpecs(scenario: Scenario, params: Params, origins: Origins, origin: string): DomainSpec[] {
  if (typeof scenario.domains !== 'function') return substituteAt(scenario.domains, params, 'domains', origins, origin) as DomainSpec[];
  let specs: unknown;
  try {
    specs = scenario.domains(params);
  } catch (e) {
    throw new ScenarioError(`${origin}: domains(params) failed: ${(e as Error).message}`);
  }
  return validateDomains(specs, origin);
}

/**
 * Checks a scenario with the run's parameters; throws ScenarioError (exit 2) naming the file, the JSON
 * path and what is allowed. Nothing is started.
 */
export function checkScenarioRun(scenario: Scenario, params: Params, origin: string): void {
  validateScenario(scenario, origin);
  checkDecls(scenario, origin);
  const origins: Origins = new Map();
  try {
    const domainSpecs = resolveDomainSpecs(scenario, params, origins, origin);
    const steps = scenario.steps === undefined ? undefined : substituteAt(scenario.steps, params, 'steps', origins, origin) as Json[];
    validateResolved({ name: scenario.name, description: scenario.description, domains: domainSpecs, ...(steps ? { steps } : {}) }, origin);
    const memory = new Map<string, number>();
    const seen = new Set<string>();
    domainSpecs.forEach((d, i) => {
      if (seen.has(d.name)) throw new ScenarioError(`${origin}: domains[${i}].name: domain "${d.name}" is declared twice`, `domains[${i}].name`);
      seen.add(d.name);
      memory.set(d.name, bytesAt(d.memory, `domains[${i}].memory`, origin, LIMITS.minMemoryBytes, LIMITS.maxMemoryBytes));
    });
    const outside = new Set(domainSpecs.filter((d) => d.command !== undefined).map((d) => d.name));
    if (steps) checkSteps(steps, 'steps', memory, outside, scenario.run ? undefined : new Set(), origin);
  } catch (e) {
    withOrigin(e, origins, params);
  }
}
