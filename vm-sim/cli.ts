/**
 * hdmabuf: the simulator's command line.
 *
 *   hdmabuf list [--json]
 *   hdmabuf run [scenario|file] [--json] [--trace FILE] [--mermaid FILE]
 *                               [--param NAME=VALUE]... [--run-tag TAG] [--verbose]
 *   hdmabuf top --url URL --token TOKEN [--interval MS] [--count N]
 *   hdmabuf help [command]      hdmabuf <command> --help      hdmabuf --version
 *
 * Each command is one file of cli/ declaring its options and help; adding
 * one is one line in COMMANDS. Exit codes: 0 ok, 1 a failed run (or a bug),
 * 2 a usage or scenario error (nothing was started), 130/143 interrupted.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { commandHelp, parseCommandArgs, UsageError, type Command, type Io } from './cli/command.ts';
import { listCommand } from './cli/list.ts';
import { write } from './cli/output.ts';
import { makeRunCommand } from './cli/run.ts';
import { topCommand } from './cli/top.ts';
import { conformanceCommand } from './conformance/command.ts';
import { didYouMean } from './scenarios/suggest.ts';

/** The commands, by name. */
export const COMMANDS: Record<string, () => Command> = {
  list: () => listCommand,
  run: () => makeRunCommand(),
  top: () => topCommand,
  conformance: () => conformanceCommand,
};

/** The package's version (package.json is two levels up from the compiled file, one from the source). */
export function version(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const p = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (p.name === 'hdmabuf' && p.version) return p.version;
    } catch { /* try the next */ }
  }
  return 'unknown';
}

function generalHelp(commands: Record<string, () => Command>): string {
  const cmds = Object.values(commands).map((c) => c());
  const width = Math.max(...cmds.map((c) => c.name.length), 4);
  return `usage: hdmabuf <command> [options]

commands:
${cmds.map((c) => `  ${c.name.padEnd(width)}  ${c.summary.split(/(?<=\.) /)[0]}`).join('\n')}
  ${'help'.padEnd(width)}  help of a command: hdmabuf help <command> (or hdmabuf <command> --help)

options:
  -h, --help     this help
  -V, --version  the version

e.g. hdmabuf list; hdmabuf run fences --help; hdmabuf run fences --param frames=3000
`;
}

function lookup(commands: Record<string, () => Command>, name: string): Command {
  const make = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!make) throw new UsageError(`unknown command ${JSON.stringify(name)}${didYouMean(name, [...Object.keys(commands), 'help'])} (commands: ${Object.keys(commands).join(', ')}, help)`);
  return make();
}

/** Runs the command line `argv` (without node and the script); resolves with the exit code. */
export async function main(argv: string[], io: Io, commands: Record<string, () => Command> = COMMANDS): Promise<number> {
  try {
    const [first, ...rest] = argv;
    if (first === undefined) {
      await write(io.stderr, generalHelp(commands));
      return 2;
    }
    if (first === '--version' || first === '-V') {
      await write(io.stdout, `${version()}\n`);
      return 0;
    }
    if (first === '--help' || first === '-h') {
      await write(io.stdout, generalHelp(commands));
      return 0;
    }
    if (first === 'help') {
      if (rest.length === 0) await write(io.stdout, generalHelp(commands));
      else await write(io.stdout, await commandHelp(lookup(commands, rest[0]!), rest.slice(1)));
      return 0;
    }
    if (first.startsWith('-')) throw new UsageError(`unknown option ${first} before the command${didYouMean(first, ['--help', '--version'])} (hdmabuf --help)`);
    const cmd = lookup(commands, first);
    const { values, positionals } = parseCommandArgs(cmd, rest);
    if (values.help === true) {
      await write(io.stdout, await commandHelp(cmd, positionals));
      return 0;
    }
    return await cmd.run(values, positionals, io);
  } catch (e) {
    const err = e as Error & { code?: string };
    // Usage and scenario errors: exit 2 with the reason and where help is; anything else is a bug: exit 1 with the stack.
    const usage = err instanceof UsageError || err.code === 'ERR_BAD_SCENARIO';
    const cmd = argv[0] && Object.hasOwn(commands, argv[0]) ? ` ${argv[0]}` : '';
    await write(io.stderr, usage ? `hdmabuf: ${err.message}\n(hdmabuf${cmd} --help for usage)\n` : `hdmabuf: ${err.stack ?? String(e)}\n`);
    return usage ? 2 : 1;
  }
}

/** Runs the process's own command line and exits with its code (output is flushed first). */
export async function runMain(): Promise<never> {
  process.exit(await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }));
}

// Started as the program (`tsx vm-sim/cli.ts`), not imported (bin/hdmabuf.js, tests).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await runMain();
