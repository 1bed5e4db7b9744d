/**
 * `hdmabuf run <scenario|file>`: checks everything it can first (the
 * scenario against its schema, every parameter against its declaration,
 * the output paths), so that a mistake is exit 2 before any process starts;
 * then starts the backend and the VMs, runs the scenario, prints progress
 * and a summary, and stops everything.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { runScenario, type RunScenarioOptions } from '../launcher/execute.ts';
import { exitCodeOf, type RunResult } from '../launcher/result.ts';
import { checkRunTag } from '../launcher/run-tag.ts';
import { guardSignals } from '../launcher/signals.ts';
import { summaryLines } from '../launcher/summary.ts';
import { DEFAULT_SCENARIO } from '../scenarios/builtin/index.ts';
import { loadScenario } from '../scenarios/load.ts';
import { allowedText, paramDecls, resolveParams } from '../scenarios/params.ts';
import { checkScenarioRun } from '../scenarios/prepare.ts';
import type { Params, Scenario } from '../scenarios/types.ts';
import { UsageError, type Command, type Io } from './command.ts';
import { write } from './output.ts';
import { progressWriter } from './progress.ts';
import { watchBackend } from './top.ts';

/** What `run` calls to run a scenario (a test passes its own to see that nothing starts on bad input). */
export type ScenarioRunner = (scenario: Scenario, options: RunScenarioOptions) => Promise<RunResult>;

/** A scenario, its checked parameters and options: everything decided before a process starts. */
export interface PreparedRun {
  scenario: Scenario;
  params: Params;
  options: { json: boolean; verbose: boolean; runTag?: string; tracePath?: string; mermaidPath?: string; mermaidMaxLines?: number; reportPath?: string; live: boolean };
}

/** Checks that `file` can be written: its folder exists and is writable, and it is not a folder. */
function checkOutputPath(option: string, file: string): string {
  const path = resolve(file);
  const dir = dirname(path);
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new UsageError(`--${option} ${file}: folder ${dir} does not exist`);
  }
  if (!st.isDirectory()) throw new UsageError(`--${option} ${file}: ${dir} is not a folder`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new UsageError(`--${option} ${file}: folder ${dir} is not writable`);
  }
  try {
    if (statSync(path).isDirectory()) throw new UsageError(`--${option} ${file}: is a folder, not a file`);
  } catch (e) {
    if (e instanceof UsageError) throw e;
  }
  return path;
}

/** Every check of a run's input; throws UsageError or ScenarioError (exit 2). Starts nothing. */
export async function prepareRun(values: Record<string, unknown>, positionals: string[]): Promise<PreparedRun> {
  if (positionals.length > 1) throw new UsageError(`run: one scenario at a time (got ${positionals.join(' ')})`);
  const target = positionals[0] ?? DEFAULT_SCENARIO;
  const scenario = await loadScenario(target);
  const params = resolveParams(scenario, (values.param as string[] | undefined) ?? []);
  checkScenarioRun(scenario, params, target);
  const str = (k: string): string | undefined => (typeof values[k] === 'string' ? values[k] : undefined);
  let runTag: string | undefined;
  if (str('run-tag') !== undefined) {
    try {
      runTag = checkRunTag(str('run-tag')!);
    } catch (e) {
      throw new UsageError(`--run-tag: ${(e as Error).message}`);
    }
  }
  const trace = str('trace');
  const mermaid = str('mermaid');
  const maxLines = str('mermaid-max-lines');
  const report = str('report');
  if (maxLines !== undefined && !/^\d+$/.test(maxLines)) throw new UsageError(`--mermaid-max-lines: a whole number (0: no limit), not ${JSON.stringify(maxLines)}`);
  return {
    scenario, params,
    options: {
      json: values.json === true, verbose: values.verbose === true, live: values.live === true,
      ...(runTag ? { runTag } : {}),
      ...(trace !== undefined ? { tracePath: checkOutputPath('trace', trace) } : {}),
      ...(mermaid !== undefined ? { mermaidPath: checkOutputPath('mermaid', mermaid) } : {}),
      ...(maxLines !== undefined ? { mermaidMaxLines: Number(maxLines) } : {}),
      ...(report !== undefined ? { reportPath: checkOutputPath('report', report) } : {}),
    },
  };
}

/** The parameters of a scenario, as help text. */
export function paramsHelp(scenario: Scenario): string {
  const decls = Object.entries(paramDecls(scenario));
  if (decls.length === 0) return `scenario ${scenario.name} has no parameters\n`;
  const rows = decls.map(([k, d]) => [`--param ${k}=${String(d.default)}`, `${d.description ? `${d.description}; ` : ''}${allowedText(d)}`] as const);
  const width = Math.max(...rows.map(([l]) => l.length));
  return `parameters of ${scenario.name} (shown with their defaults):\n${rows.map(([l, h]) => `  ${l.padEnd(width)}  ${h}`).join('\n')}\n`;
}

/** The run command, running scenarios with `runner`. */
export function makeRunCommand(runner: ScenarioRunner = runScenario): Command {
  return {
    name: 'run',
    summary: `Runs a scenario: a built-in by name or a .json/.ts file (default ${DEFAULT_SCENARIO}). Starts the backend and one VM process per domain, runs the steps, prints a summary, stops everything. Exit 0 when every check passed and nothing leaked, 1 otherwise, 2 for a usage or scenario error, 130/143 when interrupted, 141 when the output pipe closed (EPIPE).`,
    args: '[scenario|file]',
    options: {
      json: { type: 'boolean', help: 'print the result as one JSON object on stdout (progress goes to stderr)' },
      trace: { type: 'string', arg: 'FILE', help: "write a Chrome trace, gzipped if FILE ends in .gz (open it in https://ui.perfetto.dev or in Chrome DevTools' Performance panel: Load trace)" },
      mermaid: { type: 'string', arg: 'FILE', help: 'write a Mermaid sequence diagram of the protocol messages' },
      'mermaid-max-lines': { type: 'string', arg: 'N', help: 'most lines of that diagram (default 1000, 0: no limit): past it the middle of the run is left out, never the start-up or the teardown' },
      live: { type: 'boolean', help: 'show the backend live while the run goes (hdmabuf top, on stderr), instead of the progress lines' },
      report: { type: 'string', arg: 'FILE', help: 'write a run report: one HTML file (no network needed) with the checks, counters over time, the first and last messages and each shared buffer\'s page layout' },
      param: { type: 'string', multiple: true, arg: 'NAME=VALUE', help: 'set a scenario parameter, e.g. --param frames=60' },
      'run-tag': { type: 'string', arg: 'TAG', help: "prefix of the run's shared-memory files (default hdmabuf-<pid>-<random>)" },
      verbose: { type: 'boolean', help: "copy every child process's output to stderr" },
    },
    async moreHelp(positionals) {
      const scenario = await loadScenario(positionals[0] ?? DEFAULT_SCENARIO);
      return paramsHelp(scenario);
    },
    async run(values, positionals, io) {
      const prepared = await prepareRun(values, positionals);
      return execute(prepared, io, runner);
    },
  };
}

async function execute(p: PreparedRun, io: Io, runner: ScenarioRunner): Promise<number> {
  const out = p.options.json ? io.stderr : io.stdout;
  const progress = progressWriter(out, io.env);
  // --live: the top view on stderr from the moment the processes are up, in place of the progress lines.
  const live = new AbortController();
  let watching: Promise<number> | undefined;
  const onStarted = p.options.live
    ? (b: { url: string; observerToken: string }): void => {
      watching = watchBackend(b.url, b.observerToken, 500, 0, { ...io, stdout: io.stderr }, live.signal).catch(() => 0);
    }
    : undefined;
  const guard = guardSignals((line) => progress.line(line));
  let result: RunResult;
  try {
    result = await runner(p.scenario, {
      params: p.params, progress: (line) => { if (!watching) progress.line(line); }, signal: guard.signal,
      ...(onStarted ? { onStarted } : {}),
      ...(p.options.runTag ? { runTag: p.options.runTag } : {}),
      ...(p.options.tracePath ? { tracePath: p.options.tracePath } : {}),
      ...(p.options.mermaidPath ? { mermaidPath: p.options.mermaidPath } : {}),
      ...(p.options.mermaidMaxLines !== undefined ? { mermaidMaxLines: p.options.mermaidMaxLines } : {}),
      ...(p.options.reportPath ? { reportPath: p.options.reportPath } : {}),
      ...(p.options.verbose ? { echoOutput: true } : {}),
    });
  } finally {
    live.abort();
    await watching;
    guard.dispose();
    progress.done();
  }
  const code = guard.exitCode() ?? exitCodeOf(result);
  if (p.options.json) await write(io.stdout, `${JSON.stringify(result)}\n`);
  else await write(io.stdout, `${progress.summary(summaryLines(result)).join('\n')}\n`);
  return code;
}
