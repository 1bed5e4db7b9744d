/**
 * What every `hdmabuf` command shares: its declaration (name, summary,
 * usage, options with their help text), the usage error (exit 2), option
 * parsing that names unknown options with a "did you mean", and the help
 * text built from the declaration.
 */
import { parseArgs } from 'node:util';
import { didYouMean } from '../scenarios/suggest.ts';

/** A command-line mistake: exit 2 with the message and a pointer to the help. */
export class UsageError extends Error {
  readonly code = 'ERR_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** One option of a command. */
export interface OptionSpec {
  type: 'boolean' | 'string';
  multiple?: boolean;
  short?: string;
  /** Shown in help: `--trace FILE`. */
  arg?: string;
  help: string;
}

/** Where a command writes, and what it may ask of the terminal. */
export interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  env: NodeJS.ProcessEnv;
}

/** A command: `hdmabuf <name> ...`. */
export interface Command {
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** Positional arguments, e.g. `<scenario|file>`. */
  readonly args: string;
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** More help after the options (may depend on the positionals, e.g. a scenario's parameters). */
  moreHelp?(positionals: string[]): Promise<string>;
  /** Runs; resolves with the exit code. */
  run(values: Record<string, unknown>, positionals: string[], io: Io): Promise<number>;
}

/** Options every command has. */
export const HELP_OPTION: OptionSpec = { type: 'boolean', short: 'h', help: 'this help' };

/** Parses a command's arguments; unknown options and bad values are UsageErrors that say what is known. */
export function parseCommandArgs(cmd: Command, argv: string[]): { values: Record<string, unknown>; positionals: string[] } {
  const options: Record<string, OptionSpec> = { ...cmd.options, help: HELP_OPTION };
  const names = Object.keys(options).map((n) => `--${n}`);
  for (const a of argv) {
    if (a === '--') break;
    const flag = a.startsWith('--') ? a.split('=')[0]! : undefined;
    if (flag && !names.includes(flag)) throw new UsageError(`${cmd.name}: unknown option ${flag}${didYouMean(flag, names)} (options: ${names.join(', ')})`);
    if (!flag && a.startsWith('-') && a.length > 1 && !Object.values(options).some((o) => o.short === a.slice(1))) throw new UsageError(`${cmd.name}: unknown option ${a} (options: ${names.join(', ')})`);
  }
  try {
    const parsed = parseArgs({
      args: argv,
      options: Object.fromEntries(Object.entries(options).map(([k, o]) => [k, { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) }])),
      allowPositionals: true,
      strict: true,
    });
    return { values: parsed.values as Record<string, unknown>, positionals: parsed.positionals };
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err.code?.startsWith('ERR_PARSE_ARGS')) {
      // node:util's text suggests quoting; say instead which option needs what.
      const m = /Option '(?:-\w, )?(--[\w-]+)[^']*' argument missing/.exec(err.message);
      throw new UsageError(m ? `${cmd.name}: option ${m[1]} needs a value (${m[1]} ${options[m[1]!.slice(2)]?.arg ?? 'VALUE'})` : `${cmd.name}: ${err.message}`);
    }
    throw e;
  }
}

/** The help text of a command. */
export async function commandHelp(cmd: Command, positionals: string[] = []): Promise<string> {
  const options = { ...cmd.options, help: HELP_OPTION };
  const rows = Object.entries(options).map(([k, o]) => [`${o.short ? `-${o.short}, ` : ''}--${k}${o.arg ? ` ${o.arg}` : ''}`, `${o.help}${o.multiple ? ' (repeatable)' : ''}`] as const);
  const width = Math.max(...rows.map(([l]) => l.length));
  const more = cmd.moreHelp ? await cmd.moreHelp(positionals) : '';
  return `usage: hdmabuf ${cmd.name}${cmd.args ? ` ${cmd.args}` : ''} [options]\n\n${cmd.summary}\n\noptions:\n${rows.map(([l, h]) => `  ${l.padEnd(width)}  ${h}`).join('\n')}\n${more ? `\n${more}` : ''}`;
}
