/**
 * Every command README.md shows is run end to end, as a person would type it
 * in the repository (through `sh -c`, so `npx` and `npm run` resolve as they
 * do for a user): exit 0, and for scenario runs, nothing leaked (the summary's
 * or the JSON's leak figures, and no shared-memory file of the run left).
 *
 * The commands are extracted from README.md (its sh blocks, and the `npx …`
 * and `npm run …` commands quoted in its text). Each must have a plan below:
 * the exact command, or the same command with small parameters where the
 * README's own options allow it (so the suite stays short on a 2-core CI), or
 * a reason it is not run here (the test suite itself, a full benchmark or
 * stress run of minutes, a generator that rewrites committed files, each
 * checked by the test named). A README command without a plan fails the
 * first test, so the README cannot grow a command nobody runs.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const scratch = mkdtempSync(join(tmpdir(), 'hdmabuf-readme-run-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The commands README shows: lines of its sh blocks (comments and output lines dropped) and quoted `npx …` / `npm run …` commands. */
export function readmeShellCommands(text: string): string[] {
  const lines = [...text.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.split('\n'))
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const quoted = [...text.matchAll(/`((?:npx|npm run) [^`]+)`/g)].map((m) => m[1]!.trim());
  return [...new Set([...lines, ...quoted])];
}

/** How a README command is run here. */
type Plan =
  | { run: string; expect?: 'summary' | 'json' | 'plain' }
  | { scripted: 'backend' }
  | { not: string };

const frames = '--param frames=30';
const PLANS: Record<string, Plan> = {
  'npm install && npm start': { run: `npm start -- ${frames}`, expect: 'summary' },
  'npm test': { not: 'the test suite itself (CI runs it)' },
  'npx vitest run test/cli': { not: 'a part of the test suite itself' },
  'npx vitest run test/conformance': { not: 'a part of the test suite itself' },
  'npx tsx scripts/transition-coverage.ts [test files]': { not: 'runs the test suite (or part of it) with the transition log; .ci/run checks the whole suite\'s log with it, and test/transition-coverage tests the log' },
  'npx hdmabuf --help': { run: 'npx hdmabuf --help' },
  'npx hdmabuf list': { run: 'npx hdmabuf list' },
  'npx hdmabuf run fan-out': { run: 'npx hdmabuf run fan-out', expect: 'summary' },
  'npx hdmabuf run fences --help': { run: 'npx hdmabuf run fences --help' },
  'npx hdmabuf run NAME --help': { run: 'npx hdmabuf run move --help' },
  'npx hdmabuf run vm-sim/scenarios/examples/hello-share.json --json': { run: 'npx hdmabuf run vm-sim/scenarios/examples/hello-share.json --json', expect: 'json' },
  'npx hdmabuf run vm-sim/scenarios/examples/outside-importer.json': { run: 'npx hdmabuf run vm-sim/scenarios/examples/outside-importer.json', expect: 'summary' },
  'mkdir -p out && npx hdmabuf run compositor --trace out/run.json --mermaid out/run.mmd --param frames=60':
    { run: 'mkdir -p out && npx hdmabuf run compositor --trace out/run.json --mermaid out/run.mmd --param frames=60', expect: 'summary' },
  // One quick benchmark run stands for the four: the same code path, every option at once (test/bench/bench-shape.test.ts checks the report's content).
  'npm run bench': { not: 'a full benchmark run takes minutes; `npm run -s bench -- --json` runs it with --quick --out' },
  'npm run bench -- --out FILE': { not: 'run with --quick as part of `npm run -s bench -- --json`' },
  'npm run bench -- --quick': { not: 'run as part of `npm run -s bench -- --json`' },
  'npm run -s bench -- --json': { run: `npm run -s bench -- --json --quick --out ${join(scratch, 'bench.json')}`, expect: 'plain' },
  'npm run bench -- --only round-trip': { run: 'npm run bench -- --only round-trip --quick' },
  'npm run bench:record': { not: 'a full run that rewrites the committed recording; the block it writes is checked by test/bench/readme.test.ts' },
  'npm run bench:readme': { run: 'npm run bench:readme -- --check' },
  'mkdir -p out && npm run bench:plot -- --html out/bench.html': { run: 'mkdir -p out && npm run bench:plot -- --html out/bench.html' },
  'npm run readme': { not: 'rewrites README\'s table of built-ins; test/cli/readme.test.ts checks the table is what it writes' },
  'npm run spec': { not: 'rewrites SPEC.md\'s tables and the golden vectors; test/protocol checks they are what it writes' },
  'npm run stress': { not: 'about two minutes against a backend; `npm run stress -- --quick` runs it with one class' },
  'npm run stress -- --quick': { run: 'npm run stress -- --quick --class mutated --class-ms 300 --no-corpus' },
  'npx tsx vm-sim/chaos/random-kill.ts --runs 60': { run: 'npx tsx vm-sim/chaos/random-kill.ts --runs 1 --seed 3' },
  'npx tsx vm-sim/hv-main.ts --port 7000': { scripted: 'backend' },
  'npx hdmabuf conformance backend --url ws://127.0.0.1:7000 --token 3d7b… --json report.json --junit report.xml': { scripted: 'backend' },
  'hdmabuf conformance backend --url URL --token TOKEN [--json FILE] [--junit FILE] [--timeout-ms MS] [--only FILE]': { scripted: 'backend' },
  'hdmabuf conformance domain [--json FILE] [--junit FILE] [--timeout-ms MS] [--only RULE] -- COMMAND [ARGS…]': { not: 'the synopsis of the next line, which runs' },
  // One section of the suite (test/conformance-domain runs it whole).
  'npx hdmabuf conformance domain -- npx tsx vm-sim/conformance/domain/example-domain.ts': { run: 'npx hdmabuf conformance domain --only 10.4 -- npx tsx vm-sim/conformance/domain/example-domain.ts' },
  'npm run stress -- --help': { run: 'npm run stress -- --help' },
};

interface Ran { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Runs a shell command line in the repository, in a process group of its own (killed whole if it outlives `timeoutMs`). */
function sh(command: string, timeoutMs: number): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', command], { cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', npm_config_update_notifier: 'false' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ } }, timeoutMs);
    child.once('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

/** The run tags a command's output names (`run hdmabuf-123-abcd`). */
function runTags(text: string): string[] {
  return [...new Set([...text.matchAll(/\b(hdmabuf-\d+-[0-9a-f]{8})\b/g)].map((m) => m[1]!))];
}

function shmFilesOf(tag: string): string[] {
  return existsSync('/dev/shm') ? readdirSync('/dev/shm').filter((f) => f.startsWith(tag)) : [];
}

const LEAKS_LINE = /leaks\s+0\s+\(busy grants 0, mappings 0, processes 0, shm files 0\)/;

describe('README.md commands, run end to end', () => {
  const commands = readmeShellCommands(readme);

  it('every command README shows has a plan here, and every plan is still in README', () => {
    expect(commands.length).toBeGreaterThan(15);
    expect(commands.filter((c) => !(c in PLANS))).toEqual([]);
    expect(Object.keys(PLANS).filter((c) => !commands.includes(c))).toEqual([]);
  });

  const runs = [...new Set(Object.values(PLANS).flatMap((p) => ('run' in p ? [p] : [])))];
  for (const plan of runs) {
    it(plan.run, async () => {
      mkdirSync(join(root, 'out'), { recursive: true });
      const r = await sh(plan.run, 170_000);
      const all = `${r.stdout}\n${r.stderr}`;
      expect(r.code, `${plan.run}\n${all.slice(-3000)}`).toBe(0);
      if (plan.expect === 'summary') expect(r.stdout).toMatch(LEAKS_LINE);
      if (plan.expect === 'json') {
        const result = JSON.parse(r.stdout) as { ok: boolean; leaks: Record<string, number> };
        expect(result.ok).toBe(true);
        expect(result.leaks).toEqual({ busyGrants: 0, mappings: 0, processes: 0, shmFiles: 0 });
      }
      if (plan.expect === 'plain') {
        // `npm run -s` keeps npm's banner off stdout: the report alone, as JSON.
        const report = JSON.parse(r.stdout) as { leaks: Record<string, number> };
        expect(report.leaks).toEqual({ busyGrants: 0, mappings: 0, processes: 0, shmFiles: 0 });
      }
      for (const tag of runTags(all)) expect(shmFilesOf(tag), tag).toEqual([]);
    }, 180_000);
  }

  it('npx tsx vm-sim/hv-main.ts --port 0, then npx hdmabuf conformance backend and hdmabuf top against it, then kill -TERM <pid>', async () => {
    const hv = spawn('sh', ['-c', 'exec npx tsx vm-sim/hv-main.ts --port 0'], { cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const closed = new Promise<number | null>((resolve) => hv.once('close', (code) => resolve(code)));
    try {
      const ready = await new Promise<{ url: string; controlToken: string; observerToken: string; runTag: string; pid: number }>((resolve, reject) => {
        let out = '';
        hv.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const line = out.split('\n').find((l) => l.startsWith('{"type":"ready"'));
          if (line) resolve(JSON.parse(line) as never);
        });
        void closed.then((code) => reject(new Error(`hv-main exited (${code}) before its ready line: ${out}`)));
      });
      const report = join(scratch, 'report.json');
      const conf = await sh(`npx hdmabuf conformance backend --url ${ready.url} --token ${ready.controlToken} --json ${report} --junit ${join(scratch, 'report.xml')} --only session`, 170_000);
      expect(conf.code, conf.stdout.slice(-3000) + conf.stderr.slice(-2000)).toBe(0);
      expect(existsSync(report) && existsSync(join(scratch, 'report.xml'))).toBe(true);
      const top = await sh(`npx hdmabuf top --url ${ready.url} --token ${ready.observerToken} --count 1`, 60_000);
      expect(top.code, top.stderr).toBe(0);
      // `kill -TERM <pid>` with the ready line's pid: it closes every connection, removes its files and exits with 0 (and so does npx).
      process.kill(ready.pid, 'SIGTERM');
      expect(await closed).toBe(0);
      expect(shmFilesOf(ready.runTag)).toEqual([]);
    } finally {
      try { process.kill(-hv.pid!, 'SIGKILL'); } catch { /* exited */ }
      await closed;
    }
  }, 240_000);
});
