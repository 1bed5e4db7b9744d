/**
 * README.md cannot drift from the CLI: its table of built-ins is the
 * generated one, every `npx hdmabuf` command of its shell blocks passes the
 * CLI's checks (list and help commands run; run commands get as far as the
 * point where the processes would start: the scenario, its parameters and
 * output paths are all accepted), and its TypeScript scenario loads and
 * passes the scenario checks. (The library example runs in
 * test/package/package.test.ts.)
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { COMMANDS, main } from '../../vm-sim/cli.ts';
import type { Io } from '../../vm-sim/cli/command.ts';
import { withTable } from '../../vm-sim/cli/readme-table.ts';
import { makeRunCommand } from '../../vm-sim/cli/run.ts';
import { loadScenario } from '../../vm-sim/scenarios/load.ts';
import { paramDefaults } from '../../vm-sim/scenarios/params.ts';
import { checkScenarioRun } from '../../vm-sim/scenarios/prepare.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const readme = readFileSync(`${root}README.md`, 'utf8');

/** The `npx hdmabuf ...` commands of the README's sh blocks, as argument lists (comments and `mkdir -p out &&` removed). */
function readmeCommands(): string[][] {
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks.flatMap((b) => b.split('\n'))
    .map((l) => l.replace(/\s+#.*$/, '').replace(/^mkdir -p out && /, '').trim())
    .filter((l) => l.startsWith('npx hdmabuf ') && !l.startsWith('npx hdmabuf conformance'))
    .map((l) => l.slice('npx hdmabuf '.length).split(/\s+/));
}

function io(): Io {
  const sink = (): PassThrough => { const s = new PassThrough(); s.resume(); return s; };
  return { stdout: sink(), stderr: sink(), env: { NO_COLOR: '1' } };
}

describe('README.md', () => {
  it('lists every built-in, as generated from the registry (npm run readme)', () => {
    expect(readme).toBe(withTable(readme));
  });

  it('shows only hdmabuf commands the CLI accepts', async () => {
    const commands = readmeCommands();
    expect(commands.length).toBeGreaterThanOrEqual(5);
    mkdirSync(`${root}out`, { recursive: true });
    process.chdir(root);
    for (const argv of commands) {
      const started: string[] = [];
      const stub = { ...COMMANDS, run: () => makeRunCommand(async (s) => { started.push(s.name); throw Object.assign(new Error('stop before starting processes'), { code: 'README_STUB' }); }) };
      const code = await main(argv, io(), stub);
      if (argv[0] === 'run' && !argv.includes('--help')) expect(started, argv.join(' ')).toHaveLength(1);
      else expect(code, argv.join(' ')).toBe(0);
    }
  });

  it('has a TypeScript scenario that loads and passes the checks', async () => {
    const m = /A TypeScript scenario:\n\n```ts\n([\s\S]*?)```/.exec(readme);
    expect(m).not.toBeNull();
    mkdirSync(`${root}out`, { recursive: true });
    const file = `${root}out/readme-scenario.ts`;
    writeFileSync(file, m![1]!);
    const s = await loadScenario(file);
    expect(() => checkScenarioRun(s, paramDefaults(s), file)).not.toThrow();
    expect(s.name).toBe('two-readers');
  });
});
