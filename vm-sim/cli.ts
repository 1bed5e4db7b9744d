/**
 * hdmabuf: launches the simulator's multi-process scenarios.
 *
 *   hdmabuf list [--json]
 *   hdmabuf run <scenario-name-or-file> [--json] [--trace FILE] [--mermaid FILE]
 *                                       [--param NAME=VALUE]... [--run-tag TAG] [--verbose]
 *
 * `run` starts the backend and one VM process per domain, runs the scenario,
 * prints progress and a summary (with --json: one JSON object on stdout,
 * progress on stderr), stops everything and exits 0 only when every check
 * passed and nothing leaked (1 otherwise, 2 on a usage error, 130/143 when
 * interrupted).
 */
import { parseArgs } from 'node:util';
import { runScenario } from './launcher/execute.ts';
import { parseParams } from './launcher/params.ts';
import { exitCodeOf, type RunResult } from './launcher/result.ts';
import { checkRunTag } from './launcher/run-tag.ts';
import { guardSignals } from './launcher/signals.ts';
import { summaryLines } from './launcher/summary.ts';
import { builtinScenarios, DEFAULT_SCENARIO } from './scenarios/builtin/index.ts';
import { loadScenario } from './scenarios/load.ts';

const USAGE = `usage:
  hdmabuf list [--json]                      the built-in scenarios
  hdmabuf run <scenario|file> [options]      run one (default scenario: ${DEFAULT_SCENARIO})

run options:
  --json               print the result as one JSON object on stdout (progress goes to stderr)
  --trace FILE         write a Chrome trace, gzipped if FILE ends in .gz (open it in https://ui.perfetto.dev
                       or in Chrome DevTools' Performance panel: Load profile)
  --mermaid FILE       write a Mermaid sequence diagram of the protocol messages
  --param NAME=VALUE   override a scenario parameter (repeatable), e.g. --param frames=60
  --run-tag TAG        prefix of the run's shared-memory files (default hdmabuf-<pid>-<random>)
  --verbose            copy every child's output to stderr
`;

/** Writes and exits once the text is flushed (a pipe may be slow). */
function finish(code: number, text = '', stream: NodeJS.WriteStream = process.stdout): void {
  if (!text) process.exit(code);
  stream.write(text, () => process.exit(code));
}

function list(json: boolean): void {
  const all = builtinScenarios().map((s) => ({ name: s.name, description: s.description }));
  if (json) return finish(0, `${JSON.stringify(all)}\n`);
  const width = Math.max(...all.map((s) => s.name.length));
  finish(0, `${all.map((s) => `${s.name.padEnd(width)}  ${s.description}${s.name === DEFAULT_SCENARIO ? ' (default)' : ''}`).join('\n')}\n`);
}

async function run(target: string, values: Record<string, string | boolean | string[] | undefined>): Promise<void> {
  const json = values.json === true;
  const out = json ? process.stderr : process.stdout;
  const progress = (line: string): void => { out.write(`${line}\n`); };
  const scenario = await loadScenario(target);
  const params = parseParams((values.param as string[] | undefined) ?? [], scenario.params);
  const runTag = typeof values['run-tag'] === 'string' ? checkRunTag(values['run-tag']) : undefined;
  const guard = guardSignals(progress);
  let result: RunResult;
  try {
    result = await runScenario(scenario, {
      params, progress, signal: guard.signal,
      ...(runTag ? { runTag } : {}),
      ...(typeof values.trace === 'string' ? { tracePath: values.trace } : {}),
      ...(typeof values.mermaid === 'string' ? { mermaidPath: values.mermaid } : {}),
      ...(values.verbose === true ? { echoOutput: true } : {}),
    });
  } finally {
    guard.dispose();
  }
  const sig = guard.received();
  const code = sig ? (sig === 'SIGINT' ? 130 : 143) : exitCodeOf(result);
  if (json) finish(code, `${JSON.stringify(result)}\n`);
  else finish(code, `${summaryLines(result).join('\n')}\n`);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    options: {
      json: { type: 'boolean' },
      trace: { type: 'string' },
      mermaid: { type: 'string' },
      param: { type: 'string', multiple: true },
      'run-tag': { type: 'string' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  const [command, target, ...rest] = positionals;
  if (values.help || command === 'help' || command === undefined) return finish(command === undefined && !values.help ? 2 : 0, USAGE, command === undefined && !values.help ? process.stderr : process.stdout);
  if (rest.length > 0) throw new RangeError(`unexpected argument(s): ${rest.join(' ')}`);
  if (command === 'list') return list(values.json === true);
  if (command === 'run') return run(target ?? DEFAULT_SCENARIO, values);
  throw new RangeError(`unknown command ${command}`);
}

main().catch((e: unknown) => {
  const err = e as Error & { code?: string };
  // Usage and scenario-format errors: exit 2 with the reason; anything else is a bug: exit 1 with the stack.
  const usage = err instanceof RangeError || err.code === 'ERR_BAD_SCENARIO' || err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE';
  finish(usage ? 2 : 1, `hdmabuf: ${usage ? err.message : (err.stack ?? String(e))}\n${usage ? `\n${USAGE}` : ''}`, process.stderr);
});
