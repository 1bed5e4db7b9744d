/** `hdmabuf list`: the built-in scenarios, with their parameters. */
import { builtinScenarios, DEFAULT_SCENARIO } from '../scenarios/builtin/index.ts';
import { paramDecls } from '../scenarios/params.ts';
import { UsageError, type Command } from './command.ts';
import { write } from './output.ts';

export const listCommand: Command = {
  name: 'list',
  summary: 'Lists the built-in scenarios (`hdmabuf run NAME --help` shows one\'s parameters).',
  args: '',
  options: {
    json: { type: 'boolean', help: 'print [{name, description, default, params: {NAME: {type, default, minimum, maximum, enum, description}}}]' },
  },
  async run(values, positionals, io) {
    if (positionals.length > 0) throw new UsageError(`list: unexpected argument(s): ${positionals.join(' ')}`);
    const all = builtinScenarios();
    if (values.json === true) {
      const out = all.map((s) => ({ name: s.name, description: s.description, default: s.name === DEFAULT_SCENARIO, params: paramDecls(s) }));
      await write(io.stdout, `${JSON.stringify(out)}\n`);
      return 0;
    }
    const width = Math.max(...all.map((s) => s.name.length));
    await write(io.stdout, `${all.map((s) => `${s.name.padEnd(width)}  ${s.description}${s.name === DEFAULT_SCENARIO ? ' (default)' : ''}`).join('\n')}\n`);
    return 0;
  },
};
