/**
 * The benchmark in --quick mode (every figure, small sizes, one trial):
 * the report has every figure with value, baseline, ratio, target, met,
 * protocol version and samples; the run's commit, date, load and machine;
 * the scale curve; --out writes the same JSON; and the run leaked nothing.
 * No timing is asserted: benchmarks are not timed tests, and this machine's
 * speed is not the product's.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_VERSION, MIN_VERSION } from '../../protocol/index.ts';
import { QUICK } from '../../vm-sim/bench/config.ts';
import type { BenchReport } from '../../vm-sim/bench/types.ts';
import { BENCH_IDS } from './ids.ts';

const MAIN = fileURLToPath(new URL('../../vm-sim/bench/main.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'hdmabuf-bench-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run bench -- --quick --json --out FILE', () => {
  it('reports every figure with its baseline, ratio, target and samples, the run\'s context and the scale curve, and leaks nothing', async () => {
    const out = join(dir, 'report.json');
    const r = await runBench(['--quick', '--json', '--out', out]);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const report = JSON.parse(r.stdout) as BenchReport;
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(report);
    expect(report).toMatchObject({ bench: 'hdmabuf', quick: true, leaks: { busyGrants: 0, mappings: 0, processes: 0, shmFiles: 0 } });
    expect(report.versions).toEqual({ newest: MAX_VERSION, v1: MIN_VERSION });
    expect(report.commit.sha).toMatch(/^[0-9a-f]{40}$/);
    expect(Number.isNaN(Date.parse(report.date))).toBe(false);
    expect(report.load.start).toHaveLength(3);
    expect(report.load.end).toHaveLength(3);
    expect(report.machine.cpus).toBeGreaterThan(0);
    expect(report.machine.node).toBe(process.version);
    expect(report.results.map((x) => x.id)).toEqual(BENCH_IDS);
    for (const x of report.results) {
      expect(Object.keys(x).filter((k) => k !== 'note').sort()).toEqual(['baseline', 'baselineName', 'id', 'met', 'name', 'ratio', 'ratioMeaning', 'ratioSpread', 'samples', 'target', 'targetSource', 'trials', 'unit', 'value', 'version']);
      expect(Number.isFinite(x.value) && x.value > 0, x.id).toBe(true);
      expect(Number.isFinite(x.baseline) && x.baseline! > 0, x.id).toBe(true);
      expect(Number.isFinite(x.ratio), x.id).toBe(true);
      expect(x.met === null, x.id).toBe(x.target === null);
      expect(x.samples.value.length, x.id).toBeGreaterThan(0);
      expect(x.samples.baseline.length > 0 || Object.keys(x.samples.parts ?? {}).length > 0, x.id).toBe(true);
      expect([MIN_VERSION, MAX_VERSION]).toContain(x.version);
    }
    // Figures whose every trial has its own baseline trial carry the spread of the trial-by-trial ratios.
    const paired = report.results.filter((x) => x.ratioSpread !== null).map((x) => x.id);
    expect(paired).toEqual(expect.arrayContaining(['first-share-4k-vs-memcpy', 'map-4k', 'v1-vs-newest-first-share-4k', 'handoff-vs-round-trip', 'triple-buffering']));
    expect(paired).not.toContain('first-share-4k-vs-routed-copy');
    for (const x of report.results) if (x.ratioSpread) expect(x.ratioSpread[0] <= x.ratioSpread[1] && x.ratioSpread[0] > 0, x.id).toBe(true);
    // The figures the issue sets targets for carry them.
    const targets = Object.fromEntries(report.results.map((x) => [x.id, x.target]));
    expect(targets).toMatchObject({
      'first-share-4k-vs-memcpy': 'ratio >= 2', 'first-share-4k-vs-routed-copy': 'ratio >= 20', 'first-share-4k-vs-ws-copy': null,
      'map-4k': 'ratio <= 10', 'map-4k-vs-import-floor': null, 'first-share-4k-scattered': 'ratio <= 1.5',
      'handoff-vs-round-trip': 'ratio <= 1.2', 'triple-buffering': '1/1.2 <= ratio <= 1.2', 'fan-out': null, 'v1-vs-newest-first-share-4k': null,
    });
    expect(report.scale.map((s) => s.bytes)).toEqual(QUICK.scaleSizes);
    for (const s of report.scale) {
      expect(s.pages).toBe(s.bytes / 4096);
      expect(s.shareSamples).toHaveLength(QUICK.scaleTrials);
      expect(s.shareV1Samples).toHaveLength(QUICK.scaleTrials);
      expect(s.handoffSamples).toHaveLength(QUICK.scaleRoundTrips);
      expect(s.shareMs > 0 && s.shareV1Ms > 0 && s.memcpyMs > 0 && s.handoffUs > 0).toBe(true);
    }
    expect(typeof report.backend.source).toBe('string');
    // The backend's own work per map, read from its counters around the map trials: the v2 pair's 4K map reads
    // its multilevel directory (a top page and one leaf per 1,024 refs) and maps every page of the buffer.
    const floor = report.results.find((x) => x.id === 'map-4k-vs-import-floor')!;
    const [workMs] = floor.samples.parts?.backendGrantWork ?? [];
    expect(workMs, floor.note).toBeGreaterThan(0);
    expect(floor.note).toMatch(/: 9 directory pages read and 8100 grant entries mapped in \d+\.\d{3} ms/);
  }, 300_000);
});
