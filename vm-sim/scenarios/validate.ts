/**
 * Checks a scenario (from JSON or a module) before anything starts, so that
 * a typo is an error naming the field, not a failure halfway through a run.
 */
import { MAX_NAME } from '../../protocol/limits.ts';
import { STEP_KINDS } from './steps/index.ts';
import type { DomainSpec, Scenario, Step } from './types.ts';

/** A scenario that does not follow the format. */
export class ScenarioError extends Error {
  readonly code = 'ERR_BAD_SCENARIO';
  constructor(message: string) {
    super(message);
    this.name = 'ScenarioError';
  }
}

/** Required fields per step kind, and the fields that name a domain. */
const SHAPES: Record<string, { required: string[]; domains: string[] }> = {
  export: { required: ['from', 'to', 'buffer'], domains: ['from', 'to'] },
  import: { required: ['into', 'buffer'], domains: ['into'] },
  write: { required: ['in', 'buffer', 'seed'], domains: ['in'] },
  verify: { required: ['in', 'buffer', 'seed'], domains: ['in'] },
  handoff: { required: ['from', 'to', 'frames'], domains: ['from', 'to'] },
  release: { required: ['in', 'buffer'], domains: ['in'] },
  unexport: { required: ['in', 'buffer'], domains: ['in', 'to'] },
  free: { required: ['in', 'buffer'], domains: ['in'] },
  query: { required: ['in', 'buffer'], domains: ['in', 'to'] },
  kill: { required: ['domain'], domains: ['domain'] },
  wait: { required: ['in', 'event'], domains: ['in', 'to'] },
  call: { required: ['in', 'cmd'], domains: ['in'] },
  pause: { required: ['ms'], domains: [] },
  repeat: { required: ['times', 'steps'], domains: [] },
};

const NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;

function checkDomains(domains: unknown): DomainSpec[] {
  if (!Array.isArray(domains) || domains.length === 0) throw new ScenarioError('domains must be a non-empty array of {name, memory}');
  const seen = new Set<string>();
  domains.forEach((d: Record<string, unknown>, i) => {
    if (typeof d !== 'object' || d === null) throw new ScenarioError(`domains[${i}] must be an object`);
    if (typeof d.name !== 'string' || !NAME.test(d.name) || d.name.length > MAX_NAME) throw new ScenarioError(`domains[${i}].name must be a name (letters, digits, - and _, starting with a letter, at most ${MAX_NAME})`);
    if (seen.has(d.name)) throw new ScenarioError(`domain ${d.name} is declared twice`);
    seen.add(d.name);
    if (typeof d.memory !== 'number' && typeof d.memory !== 'string') throw new ScenarioError(`domains[${i}].memory must be a size ("64MiB") or a byte count`);
    if (d.maxGrantFrames !== undefined && typeof d.maxGrantFrames !== 'number' && typeof d.maxGrantFrames !== 'string') throw new ScenarioError(`domains[${i}].maxGrantFrames must be a number`);
    const extra = Object.keys(d).filter((k) => !['name', 'memory', 'maxGrantFrames'].includes(k));
    if (extra.length) throw new ScenarioError(`domains[${i}] has unknown field(s) ${extra.join(', ')}`);
  });
  return domains as DomainSpec[];
}

function checkSteps(steps: unknown, path: string, domains: Set<string> | undefined): void {
  if (!Array.isArray(steps)) throw new ScenarioError(`${path} must be an array of steps`);
  steps.forEach((s: Record<string, unknown>, i) => {
    const at = `${path}[${i}]`;
    if (typeof s !== 'object' || s === null) throw new ScenarioError(`${at} must be an object`);
    const kind = s.do;
    const shape = typeof kind === 'string' ? SHAPES[kind] : undefined;
    if (!shape || !STEP_KINDS.includes(kind as Step['do'])) throw new ScenarioError(`${at}.do must be one of ${STEP_KINDS.join(', ')} (got ${JSON.stringify(kind)})`);
    for (const f of shape.required) if (s[f] === undefined) throw new ScenarioError(`${at} (${String(kind)}) needs ${f}`);
    if (kind === 'export' && s.bytes === undefined && (s.width === undefined || s.height === undefined)) throw new ScenarioError(`${at} (export) needs bytes, or width and height`);
    if (domains) {
      for (const f of shape.domains) {
        const v = s[f];
        const names = Array.isArray(v) ? v : v === undefined ? [] : [v];
        for (const n of names) {
          if (typeof n !== 'string') throw new ScenarioError(`${at}.${f} must name a domain`);
          if (!n.startsWith('$') && !domains.has(n)) throw new ScenarioError(`${at}.${f}: no domain named ${n} (declared: ${[...domains].join(', ')})`);
        }
      }
    }
    if (kind === 'repeat') checkSteps(s.steps, `${at}.steps`, domains);
  });
}

/** Checks a scenario; returns it typed, or throws ScenarioError. */
export function validateScenario(raw: unknown, origin: string): Scenario {
  if (typeof raw !== 'object' || raw === null) throw new ScenarioError(`${origin}: a scenario is an object {name, description, domains, steps}`);
  const s = raw as Record<string, unknown>;
  if (typeof s.name !== 'string' || !NAME.test(s.name)) throw new ScenarioError(`${origin}: name must be a name (letters, digits, - and _)`);
  if (typeof s.description !== 'string') throw new ScenarioError(`${origin}: description must be a string`);
  if (s.params !== undefined && (typeof s.params !== 'object' || s.params === null || Object.values(s.params).some((v) => !['number', 'string', 'boolean'].includes(typeof v)))) {
    throw new ScenarioError(`${origin}: params must map names to numbers, strings or booleans`);
  }
  let domainNames: Set<string> | undefined;
  if (typeof s.domains !== 'function') domainNames = new Set(checkDomains(s.domains).map((d) => d.name));
  if (s.steps === undefined && typeof s.run !== 'function') throw new ScenarioError(`${origin}: give steps (or, in a TypeScript module, a run function)`);
  if (s.steps !== undefined) checkSteps(s.steps, `${origin}: steps`, domainNames);
  if (s.run !== undefined && typeof s.run !== 'function') throw new ScenarioError(`${origin}: run must be a function`);
  const extra = Object.keys(s).filter((k) => !['name', 'description', 'params', 'domains', 'steps', 'run'].includes(k) && !k.startsWith('$'));
  if (extra.length) throw new ScenarioError(`${origin}: unknown field(s) ${extra.join(', ')}`);
  return s as unknown as Scenario;
}

/** Checks resolved domains (after parameters), for scenarios whose domains are a function. */
export function validateDomains(domains: unknown, origin: string): DomainSpec[] {
  try {
    return checkDomains(domains);
  } catch (e) {
    throw new ScenarioError(`${origin}: ${(e as Error).message}`);
  }
}
