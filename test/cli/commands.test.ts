/**
 * The command line's conventions, in-process: --version, help per command
 * (`help <command>` and `<command> --help` alike), a scenario's parameters in
 * `run <scenario> --help` and `list --json`, clear messages for unknown
 * commands and options (exit 2).
 */
import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { main } from '../../vm-sim/cli.ts';
import type { Io } from '../../vm-sim/cli/command.ts';

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => { out += d.toString(); });
  stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const io: Io = { stdout, stderr, env: { NO_COLOR: '1' } };
  const code = await main(argv, io);
  return { code, out, err };
}

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

describe('hdmabuf command line', () => {
  it('prints its version', async () => {
    for (const flag of ['--version', '-V']) expect(await cli(flag)).toEqual({ code: 0, out: `${pkg.version}\n`, err: '' });
  });

  it('has help per command, the same through help <command> and <command> --help', async () => {
    const general = await cli('--help');
    expect(general.code).toBe(0);
    expect(general.out).toMatch(/^ {2}list {2}/m);
    expect(general.out).toMatch(/^ {2}run {3}/m);
    const a = await cli('help', 'run');
    const b = await cli('run', '--help');
    expect(a).toEqual(b);
    expect(a.out).toMatch(/^usage: hdmabuf run/);
    for (const opt of ['--json', '--trace FILE', '--mermaid FILE', '--param NAME=VALUE', '--run-tag TAG', '--verbose']) expect(a.out).toContain(opt);
    const list = await cli('list', '-h');
    expect(list.out).toMatch(/^usage: hdmabuf list/);
    expect(list.out).not.toContain('--trace');
  });

  it("lists a scenario's parameters in run <scenario> --help", async () => {
    const r = await cli('run', 'fences', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/--param frames=2000 +frames streamed, each checksummed and checked; an integer from 1 to 10000000/);
    expect(r.out).toMatch(/--param sync=async .*one of ack, async/);
  });

  it('includes parameters in list --json', async () => {
    const r = await cli('list', '--json');
    const all = JSON.parse(r.out) as Array<{ name: string; params: Record<string, { type: string; default: unknown; description: string }> }>;
    expect(all.map((s) => s.name)).toContain('fences');
    expect(all.find((s) => s.name === 'fences')!.params.frames).toMatchObject({ type: 'integer', default: 2000, minimum: 1 });
  });

  it('refuses unknown commands and options clearly (exit 2)', async () => {
    expect(await cli('lst')).toMatchObject({ code: 2, err: expect.stringMatching(/unknown command "lst"; did you mean "list"\?/) });
    expect(await cli('list', '--jsn')).toMatchObject({ code: 2, err: expect.stringMatching(/list: unknown option --jsn; did you mean "--json"\?/) });
    expect(await cli('--verison')).toMatchObject({ code: 2, err: expect.stringMatching(/did you mean "--version"/) });
    expect(await cli('run', '--trace')).toMatchObject({ code: 2, err: expect.stringMatching(/option --trace needs a value \(--trace FILE\)/) });
    expect(await cli('list', 'extra')).toMatchObject({ code: 2, err: expect.stringMatching(/unexpected argument/) });
    expect(await cli()).toMatchObject({ code: 2, err: expect.stringMatching(/^usage: hdmabuf <command>/) });
  });
});
