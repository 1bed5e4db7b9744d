/**
 * The package as a user gets it: `npm pack` (which builds dist/ through the
 * prepare script), `npm install <tarball>` into a scratch project (from the
 * npm cache where it can; the addon is built by the package's install
 * script, allowed with --allow-scripts), then README's library example,
 * taken from README.md itself: type-checked with `tsc --strict` (no
 * skipLibCheck, so the package's own .d.ts files are checked too), compiled
 * and run with plain `node`; the same for README's launcher example
 * (hdmabuf/launcher), which runs a scenario end to end. The tarball holds no
 * tests or CI files.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const work = mkdtempSync(join(tmpdir(), 'hdmabuf-package-'));
const project = join(work, 'consumer');
let tarball = '';
let packed: string[] = [];

/** The first ts block of README's section under `heading`. */
function readmeTsBlock(heading: string): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const at = readme.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`README has no heading ${heading}`);
  const m = /```ts\n([\s\S]*?)```/.exec(readme.slice(at));
  if (!m) throw new Error(`README has no ts block under "${heading}"`);
  return m[1]!;
}

/** The README's library example (the ts block of "Using it as a library"). */
export function readmeLibraryExample(): string {
  return readmeTsBlock('## Using it as a library');
}

/** The README's launcher example (the ts block of "Running a scenario from code"). */
export function readmeLauncherExample(): string {
  return readmeTsBlock('### Running a scenario from code');
}

/** Runs a command to its end (asynchronously: the test worker must keep answering vitest meanwhile); its stdout. */
async function run(cmd: string, args: string[], cwd: string): Promise<string> {
  const { stdout } = await promisify(execFile)(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: 'false' } });
  return stdout;
}

beforeAll(async () => {
  const out = JSON.parse(await run('npm', ['pack', '--json', '--pack-destination', work], root)) as Array<{ filename: string; files: Array<{ path: string }> }>;
  tarball = join(work, out[0]!.filename);
  packed = out[0]!.files.map((f) => f.path);
  mkdirSync(project);
  // npm 11 runs a dependency's install script (ours builds the addon) only when the project allows it.
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module', allowScripts: { hdmabuf: true } }, null, 2));
  await run('npm', ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund'], project);
}, 600_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the packed package', () => {
  it('ships the library, its types, the CLI and a LICENSE, and no tests (but the conformance suite) or CI files', () => {
    for (const f of ['LICENSE', 'README.md', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/vm-sim/launcher/api.d.ts', 'vm-sim/launcher/api.js', 'vm-sim/bin/hdmabuf.js', 'vm-sim/scenarios/scenario.schema.json', 'binding.gyp', 'native/mem.c']) expect(packed).toContain(f);
    // The conformance suite is part of the product (`hdmabuf conformance` runs it); no other test is.
    expect(packed.filter((p) => !p.startsWith('test/conformance/') && /(^|\/)test\/|\.test\.ts$|^\.ci\//.test(p))).toEqual([]);
    expect(packed.some((p) => p.startsWith('test/conformance/'))).toBe(true);
    expect(readdirSync(join(project, 'node_modules', 'hdmabuf', 'build', 'Release'))).toContain('hdmabuf_mem.node');
  });

  it('runs the README library example with plain node after a strict type check', async () => {
    writeFileSync(join(project, 'example.ts'), readmeLibraryExample());
    const flags = ['--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node'];
    // Type-check first (the package's .d.ts included: no skipLibCheck), then emit and run.
    await run(process.execPath, [tsc, ...flags, '--noEmit', 'example.ts'], project);
    await run(process.execPath, [tsc, ...flags, '--outDir', 'out', 'example.ts'], project);
    expect((await run(process.execPath, ['out/example.js'], project)).trim()).toBe('1920x1080 AB24 127');
    expect((await run(process.execPath, ['-e', "import('hdmabuf').then((m) => console.log(typeof m.Backend, typeof m.GuestKernel, typeof m.HyperDmabuf))"], project)).trim()).toBe('function function function');
  }, 300_000);

  it('runs the README launcher example (hdmabuf/launcher) with plain node after a strict type check: a scenario end to end, nothing leaked', async () => {
    writeFileSync(join(project, 'launcher.ts'), readmeLauncherExample());
    const flags = ['--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node'];
    await run(process.execPath, [tsc, ...flags, '--noEmit', 'launcher.ts'], project);
    await run(process.execPath, [tsc, ...flags, '--outDir', 'out', 'launcher.ts'], project);
    const out = (await run(process.execPath, ['out/launcher.js'], project)).trim();
    expect(out).toMatch(/^fan-out: ok {2}\(\d+\/\d+ checks passed/m);
    expect(out.split('\n').at(-1)).toBe('{ busyGrants: 0, mappings: 0, processes: 0, shmFiles: 0 }');
    // A bad parameter is refused before anything starts, by name.
    const refused = await run(process.execPath, ['--input-type=module', '-e', "import('hdmabuf/launcher').then((m) => m.prepareScenario('fan-out', { importers: 0 })).then(() => console.log('accepted'), (e) => console.log(e.name, e.message))"], project);
    expect(refused).toMatch(/^ScenarioError .*importers.*allowed: an integer from 1 to 32/);
  }, 300_000);

  it('runs its CLI', async () => {
    expect((await run(join(project, 'node_modules', '.bin', 'hdmabuf'), ['--version'], project)).trim()).toBe((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version);
  }, 120_000);
});
