/**
 * `hdmabuf run fences --json` and `hdmabuf run move --json`, as a user runs
 * them: each is ok, every leak count is 0, and after the CLI exits none of
 * the run's processes runs and none of its shared-memory files exists.
 * Frame counts are reduced to keep the suite short (the scenarios' own
 * defaults are 2,000 and 1,500 frames; `--param frames=10000` runs the
 * issue's full count). Each run also writes its trace and diagram, which
 * must load in DevTools' trace engine and in Mermaid's parser
 * (test/trace/run-views.ts), and its report, which must load in headless
 * Chromium (test/report/report-check.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findChromium } from '../report/chromium.ts';
import { expectReportInChromium } from '../report/report-check.ts';
import { expectDiagramViewable, expectTraceViewable } from '../trace/run-views.ts';
import { expectRunClean } from '../helpers/leaks.ts';
import { pidsOf } from './cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'hdmabuf-fences-views-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function runWithViews(scenario: string, extra: string[]): Promise<Record<string, unknown>> {
  const trace = join(dir, `${scenario}.json.gz`);
  const mermaid = join(dir, `${scenario}.mmd`);
  const report = join(dir, `${scenario}.html`);
  const result = await expectRunClean(scenario, [...extra, '--trace', trace, '--mermaid', mermaid, '--report', report]);
  const pids = pidsOf(result);
  expect(pids.length).toBe(3);
  const traceJson = await expectTraceViewable(trace, { hv: (result.stats.pids as { hv: number }).hv, vms: pids.slice(1) });
  await expectDiagramViewable(mermaid);
  // The report in a real browser (test/report/report.test.ts says why it may be skipped).
  const chromium = findChromium();
  if ('path' in chromium) await expectReportInChromium(chromium.path, report, result, traceJson, scenario);
  return result.stats;
}

describe('hdmabuf run <built-in> --json: fences on shared buffers', () => {
  it('fences: frames through three hyper_dmabuf buffers with explicit fences and implicit sync, none torn, nothing leaked', async () => {
    const stats = await runWithViews('fences', ['--param', 'frames=400']);
    expect(stats).toMatchObject({ framesVerified: 400, fences: { frames: 400, tornFrames: 0, implicitMisses: 0 } });
    expect((stats.fences as { maxResvEntries: number }).maxResvEntries).toBeLessThanOrEqual(2);
  }, 180_000);

  it('move: the pages move while frames flow; no frame lost or corrupted, nothing leaked', async () => {
    const stats = await runWithViews('move', ['--param', 'frames=600', '--param', 'moves=30']);
    expect(stats).toMatchObject({ framesVerified: 600, fences: { frames: 600, tornFrames: 0, implicitMisses: 0 }, move: { moves: 30, duringStream: 30 } });
  }, 180_000);
});
