/**
 * Runs scenario steps: parameters substituted, the executor of the step's
 * kind called within the step's time budget, the result matched against
 * `expect` (or the error against `expectError`), and the outcome recorded as
 * a check, a progress line and a trace slice. A step that fails (and did
 * not expect to) rejects, which ends the scenario.
 */
import { nowUs } from '../../trace/clock.ts';
import type { ScenarioContext } from '../context.ts';
import type { Step, StepKind } from '../types.ts';
import { callStep, killStep, pauseStep, repeatStep, waitStep } from './control.ts';
import { handoffStep, verifyStep, writeStep } from './data.ts';
import type { StepExecutor, StepOutcome } from './executor.ts';
import { exportStep, freeStep, importStep, queryStep, releaseStep, unexportStep } from './share.ts';
import { badValue, int, mismatch, substitute } from './values.ts';

/** Default time budget of a step. */
export const DEFAULT_STEP_TIMEOUT_MS = 60_000;

const executors: { [K in StepKind]: StepExecutor<Extract<Step, { do: K }>> } = {
  export: exportStep, import: importStep, write: writeStep, verify: verifyStep, handoff: handoffStep,
  release: releaseStep, unexport: unexportStep, free: freeStep, query: queryStep,
  kill: killStep, wait: waitStep, call: callStep, pause: pauseStep, repeat: repeatStep,
};

/** Every step kind. */
export const STEP_KINDS = Object.keys(executors) as StepKind[];

/** A short name for a step's check. */
export function describeStep(s: Step): string {
  switch (s.do) {
    case 'export': return `export ${s.buffer} ${s.from} → ${Array.isArray(s.to) ? s.to.join(', ') : s.to}`;
    case 'import': return `import ${s.buffer} into ${s.into}`;
    case 'write': return `write ${s.buffer} in ${s.in}`;
    case 'verify': return `verify ${s.buffer} in ${s.in}`;
    case 'handoff': return `hand off ${String(s.frames)} frames ${s.from} → ${s.to}`;
    case 'release': return `release ${s.buffer} in ${s.in}`;
    case 'unexport': return `unexport ${s.buffer} in ${s.in}${s.to ? ` from ${s.to}` : ''}${s.delayMs ? ` after ${String(s.delayMs)} ms` : ''}`;
    case 'free': return `free ${s.buffer} in ${s.in}`;
    case 'query': return `query ${s.buffer} in ${s.in}${s.to ? ` for ${s.to}` : ''}`;
    case 'kill': return `kill ${s.domain}`;
    case 'wait': return `wait for ${s.event}${s.buffer ? ` of ${s.buffer}` : ''}${s.to ? ` by ${s.to}` : ''} in ${s.in}`;
    case 'call': return `${s.cmd} in ${s.in}`;
    case 'pause': return `pause ${String(s.ms)} ms`;
    case 'repeat': return `repeat ${String(s.times)} times`;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`${what}: not done within ${ms} ms`), { code: 'ERR_TIMEOUT' })), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** A step that failed; the scenario stops at it. */
export class StepFailed extends Error {
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.name = 'StepFailed';
    this.code = code;
  }
}

/** Runs one step (index "3", or "3.2.1" inside a repeat) and records its check. */
export async function runStep(ctx: ScenarioContext, raw: Step, index: string): Promise<Record<string, unknown>> {
  ctx.throwIfAborted();
  const step = substitute(raw, ctx.params);
  const executor = executors[step.do] as StepExecutor<Step> | undefined;
  if (!executor) throw badValue(`unknown step kind ${JSON.stringify((step as { do?: unknown }).do)}`);
  const name = `#${index} ${step.name ?? describeStep(step)}`;
  const timeoutMs = int(step.timeoutMs, 'timeoutMs', DEFAULT_STEP_TIMEOUT_MS);
  const nested = index.includes('.');
  const t0 = nowUs();
  let outcome: StepOutcome | undefined;
  let error: (Error & { code?: string }) | undefined;
  try {
    outcome = await withTimeout(executor(ctx, step, timeoutMs, (s, suffix) => runStep(ctx, s, `${index}.${suffix}`)), timeoutMs, name);
  } catch (e) {
    error = e instanceof Error ? e : new Error(String(e));
  }
  const ms = (nowUs() - t0) / 1000;
  ctx.run.trace?.span(name, 'step', t0, { ok: error === undefined, ...(error ? { error: error.code ?? error.message } : {}) });

  let ok: boolean;
  let detail: string;
  if (step.expectError !== undefined) {
    ok = error !== undefined && error.code === step.expectError;
    detail = error ? `failed as expected with ${error.code ?? 'no code'}: ${error.message}` : `succeeded, expected ${step.expectError}`;
    if (error && !ok) detail = `failed with ${error.code ?? 'no code'} (expected ${step.expectError}): ${error.message}`;
  } else if (error) {
    ok = false;
    detail = `${error.code ?? 'ERROR'}: ${error.message}`;
  } else {
    const m = step.expect !== undefined ? mismatch(outcome!.result, step.expect) : undefined;
    ok = m === undefined;
    detail = m ? `${outcome!.detail}; ${m}` : outcome!.detail;
  }
  ctx.check(name, ok, `${detail} [${ms < 10 ? ms.toFixed(2) : Math.round(ms)} ms]`);
  if (!nested) ctx.progress(`${ok ? '✓' : '✗'} ${name}: ${detail}`);
  if (!ok) throw new StepFailed(`${name}: ${detail}`, error?.code ?? 'ERR_CHECK');
  return outcome?.result ?? { error: error?.code };
}
