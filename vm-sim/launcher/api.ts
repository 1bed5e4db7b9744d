/**
 * The launcher as a library (`import { prepareScenario, runScenario } from 'hdmabuf/launcher'`):
 * what `hdmabuf run` does, from code. prepareScenario finds a scenario (a
 * built-in by name, or a .json/.ts file) and checks it with the run's
 * parameters before any process starts; runScenario starts the backend and
 * one VM process per domain, runs the steps, measures leaks, stops every
 * process and resolves with the same result `hdmabuf run --json` prints.
 * README "Using it as a library" shows both.
 */
import { loadScenario } from '../scenarios/load.ts';
import { resolveParams } from '../scenarios/params.ts';
import { checkScenarioRun } from '../scenarios/prepare.ts';
import type { Params, Scenario } from '../scenarios/types.ts';

export { runScenario, type RunScenarioOptions } from './execute.ts';
export { exitCodeOf, type RunResult } from './result.ts';
export { summaryLines } from './summary.ts';
export type { Leaks, HeldByDesign } from './leaks.ts';
export type { ExitCause, FatalReport, ProcessExit } from './exits.ts';
export type { Check } from './result.ts';
export { ScenarioError } from '../scenarios/validate.ts';
export { builtinScenarios, DEFAULT_SCENARIO } from '../scenarios/builtin/index.ts';
export { loadScenario };
export { defineScenario, type DomainSpec, type ParamDecl, type ParamValue, type Params, type Scenario, type Step, type StepKind } from '../scenarios/types.ts';

/** A scenario with its parameters resolved and checked: ready for runScenario. */
export interface PreparedScenario {
  scenario: Scenario;
  /** Every parameter: defaults, overridden by the ones given. */
  params: Params;
}

/**
 * Loads a scenario (a built-in's name or a file's path) and checks it with
 * these parameter overrides exactly as `hdmabuf run` does, before any process
 * starts. Throws ScenarioError naming the file, the JSON path (or the
 * parameter) and what is allowed; an unknown parameter is an error.
 */
export async function prepareScenario(nameOrPath: string, overrides: Params = {}): Promise<PreparedScenario> {
  const scenario = await loadScenario(nameOrPath);
  // Through the CLI's "name=value" path, so that a value is checked against its declaration the same way.
  const params = resolveParams(scenario, Object.entries(overrides).map(([k, v]) => `${k}=${String(v)}`));
  checkScenarioRun(scenario, params, nameOrPath);
  return { scenario, params };
}
