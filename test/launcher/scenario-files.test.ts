/**
 * The CLI with scenario files (JSON and a TypeScript module), `list`, bad
 * input, and a scenario that fails: exit codes, the JSON result, and no
 * process or shared-memory file left behind either way.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { failing, pidsOf, runCli, runJson, shmFiles, stillRunning } from './cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'hdmabuf-scenario-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('hdmabuf with scenario files', () => {
  it('list --json names every built-in with a description', async () => {
    const r = await runCli(['list', '--json']);
    expect(r.code).toBe(0);
    const list = JSON.parse(r.stdout) as Array<{ name: string; description: string }>;
    // The built-ins first, in this order (other layers may add theirs after them).
    expect(list.map((s) => s.name).slice(0, 7)).toEqual(['compositor', 'fan-out', 'importer-crash', 'exporter-crash', 'delayed-unexport', 'big-buffer', 'many-exports']);
    for (const s of list) expect(Object.keys(s).sort()).toEqual(['default', 'description', 'name', 'params']);
    const human = await runCli(['list']);
    expect(human.stdout.split('\n').filter(Boolean)).toHaveLength(list.length);
  }, 30_000);

  it('runs the JSON example with a parameter', async () => {
    const { code, result } = await runJson('vm-sim/scenarios/examples/hello-share.json', ['--param', 'frames=5']);
    expect(failing(result)).toEqual([]);
    expect(code).toBe(0);
    expect(result.stats).toMatchObject({ framesHandedOff: 5, framesVerified: 5, bytesCopied: 0 });
  }, 60_000);

  it('runs the TypeScript example', async () => {
    const { code, result } = await runJson('vm-sim/scenarios/examples/pipeline.ts', ['--param', 'rounds=1']);
    expect(failing(result)).toEqual([]);
    expect(code).toBe(0);
    expect(result.checks.some((c) => c.name === '1 rounds read by 2 readers' && c.ok)).toBe(true);
  }, 60_000);

  it('a failing step fails the run (exit 1), stops it, and leaves nothing behind', async () => {
    const file = join(dir, 'wrong-seed.json');
    writeFileSync(file, JSON.stringify({
      name: 'wrong-seed', description: 'verifies a pattern that was never written',
      domains: [{ name: 'p', memory: '8MiB' }, { name: 'c', memory: '8MiB' }],
      steps: [
        { do: 'export', from: 'p', to: 'c', buffer: 'b', bytes: 65536 },
        { do: 'write', in: 'p', buffer: 'b', seed: 1 },
        { do: 'import', into: 'c', buffer: 'b' },
        { do: 'verify', in: 'c', buffer: 'b', seed: 2 },
        { do: 'release', in: 'c', buffer: 'b' },
      ],
    }));
    const { code, result } = await runJson(file);
    expect(code).toBe(1);
    expect(result.ok).toBe(false);
    expect(failing(result)[0]).toMatch(/^#4 verify b in c: ERR_VERIFY/);
    // The steps after the failure did not run; the run was still stopped and measured.
    expect(result.checks.some((c) => c.name.startsWith('#5'))).toBe(false);
    expect(result.leaks).toMatchObject({ processes: 0, shmFiles: 0 });
    expect(stillRunning(pidsOf(result))).toEqual([]);
    expect(shmFiles(String(result.stats.runTag))).toEqual([]);
  }, 60_000);

  it('bad input exits 2 with the reason', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ name: 'bad', description: '', domains: [{ name: 'a', memory: '1MiB' }], steps: [{ do: 'import', into: 'z', buffer: 'b' }] }));
    const r1 = await runCli(['run', bad]);
    expect(r1.code).toBe(2);
    expect(r1.stderr).toMatch(/steps\[0\]\.into: no domain "z"/);
    const r2 = await runCli(['run', 'no-such-scenario']);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/built-ins: compositor, fan-out/);
    const r3 = await runCli(['frobnicate']);
    expect(r3.code).toBe(2);
    const r4 = await runCli(['run', 'compositor', '--param', 'frames']);
    expect(r4.code).toBe(2);
    expect(r4.stderr).toMatch(/expected NAME=VALUE/);
  }, 60_000);
});
