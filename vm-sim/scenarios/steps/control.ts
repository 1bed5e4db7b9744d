/**
 * Steps about processes and time: kill a domain, wait for an event, call
 * any VM command by name, pause, repeat.
 */
import type { ScenarioContext } from '../context.ts';
import type { CallStep, KillStep, PauseStep, RepeatStep, WaitStep } from '../types.ts';
import type { StepExecutor } from './executor.ts';
import { nextImportEvent } from './imports.ts';
import { badValue, int, mismatch } from './values.ts';

const SIGNALS = ['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGSEGV', 'SIGABRT'] as const;

/** Kills a domain's process and waits for it to exit. */
export const killStep: StepExecutor<KillStep> = async (ctx, s) => {
  const signal = (s.signal ?? 'SIGKILL') as NodeJS.Signals;
  if (!(SIGNALS as readonly string[]).includes(signal)) throw badValue(`signal must be one of ${SIGNALS.join(', ')}`);
  const vm = ctx.outside(s.domain) ?? ctx.vm(s.domain);
  const exit = await vm.kill(signal);
  return { result: { ...exit }, detail: `pid ${vm.pid} ${exit.signal ? `killed by ${exit.signal}` : `exited with ${exit.code}`}` };
};

/** Waits for a VM event, a NEW_IMPORT, or an export's release. */
export const waitStep: StepExecutor<WaitStep> = async (ctx, s, timeoutMs) => {
  const vm = ctx.vm(s.in);
  if (s.event === 'newImport') {
    const hid = s.buffer !== undefined ? ctx.hid(s.buffer, s.in) : undefined;
    const ev = await nextImportEvent(ctx, vm, hid, timeoutMs);
    if (hid === undefined) ctx.stashedImports.get(vm.name)?.unshift(ev); // only looked at: an import step will want it
    return { result: { ...ev, priv: undefined }, detail: `NEW_IMPORT ${String(ev.hid)} in ${s.in}` };
  }
  if (s.event === 'released') {
    if (s.buffer === undefined) throw badValue('wait for released needs a buffer');
    const hid = ctx.hid(s.buffer, s.to);
    await vm.call('dmabuf.waitReleased', { hid, timeoutMs }, timeoutMs + 5000);
    return { result: { released: true }, detail: 'grants ended, directory and pages freed' };
  }
  const match = s.match ?? {};
  const data = await vm.waitEvent(s.event, (d) => mismatch(d, resolveRefs(ctx, match)) === undefined, timeoutMs);
  return { result: data, detail: JSON.stringify(data) };
};

/** Replaces "@domid:<domain>", "@buf:<buffer>", "@hid:<buffer>:<importer>", "@fd:<buffer>:<importer>" strings by ids. */
export function resolveRefs<T>(ctx: ScenarioContext, value: T): T {
  if (typeof value === 'string' && value.startsWith('@')) {
    const [kind, a, b] = value.slice(1).split(':');
    if (kind === 'domid' && a) return ctx.domid(a) as T;
    if (kind === 'buf' && a) return ctx.buffer(a).buf as T;
    if (kind === 'hid' && a) return ctx.hid(a, b) as T;
    if (kind === 'fd' && a && b) {
      const fd = ctx.buffer(a).fds.get(b);
      if (fd === undefined) throw badValue(`${b} has no fd on "${a}"`);
      return fd as T;
    }
    throw badValue(`unknown reference ${value} (use @domid:D, @buf:B, @hid:B:D, @fd:B:D)`);
  }
  if (Array.isArray(value)) return value.map((v) => resolveRefs(ctx, v)) as T;
  if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveRefs(ctx, v)])) as T;
  }
  return value;
}

/**
 * Any VM command. A command that reports how it stopped instead of throwing
 * (a stream's `error: {code, message, frame?}`, e.g. its peer died mid-run)
 * fails the step with that code, so the result says why, typed.
 */
export const callStep: StepExecutor<CallStep> = async (ctx, s, timeoutMs) => {
  const result = await ctx.vm(s.in).call<Record<string, unknown>>(s.cmd, resolveRefs(ctx, s.args ?? {}), timeoutMs);
  const reported = reportedError(result);
  if (reported) {
    const at = typeof reported.frame === 'number' ? ` at frame ${reported.frame}` : '';
    throw Object.assign(new Error(`${s.cmd} in ${s.in} stopped${at}: ${reported.message}`), { code: reported.code });
  }
  return { result: result ?? {}, detail: s.name ? `${s.cmd} in ${s.in}` : 'done' };
};

/** The `error` a command's result reports, if it has one of the documented shape. */
function reportedError(result: unknown): { code: string; message: string; frame?: unknown } | undefined {
  const e = (result as { error?: unknown } | undefined)?.error;
  if (e === null || typeof e !== 'object') return undefined;
  const { code, message } = e as { code?: unknown; message?: unknown };
  return typeof code === 'string' && typeof message === 'string' ? (e as { code: string; message: string }) : undefined;
}

/** Waits (scenario time). */
export const pauseStep: StepExecutor<PauseStep> = async (ctx, s) => {
  const ms = int(s.ms, 'ms');
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      ctx.signal.removeEventListener('abort', done);
      resolve();
    }
    ctx.signal.addEventListener('abort', done, { once: true });
  });
  ctx.throwIfAborted();
  return { result: {}, detail: `${ms} ms` };
};

/** Runs the nested steps `times` times. */
export const repeatStep: StepExecutor<RepeatStep> = async (_ctx, s, _timeoutMs, sub) => {
  const times = int(s.times, 'times');
  for (let i = 0; i < times; i++) {
    for (let j = 0; j < s.steps.length; j++) await sub(s.steps[j]!, `${i + 1}.${j + 1}`);
  }
  return { result: { times }, detail: `${times} × ${s.steps.length} step(s)` };
};
