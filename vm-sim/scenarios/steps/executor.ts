/** The shape of a step executor. */
import type { ScenarioContext } from '../context.ts';
import type { Step } from '../types.ts';

/** What an executor returns: the step's result (for expect and the trace) and a short detail for the check. */
export interface StepOutcome {
  result: Record<string, unknown>;
  detail: string;
}

/** Runs nested steps (repeat). */
export type SubRunner = (step: Step, suffix: string) => Promise<Record<string, unknown>>;

/** Runs one kind of step. `timeoutMs` is the step's budget, for the VM calls it makes. */
export type StepExecutor<S extends Step> = (ctx: ScenarioContext, step: S, timeoutMs: number, sub: SubRunner) => Promise<StepOutcome>;
