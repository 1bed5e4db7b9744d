/**
 * `hdmabuf run compositor --report FILE.html --trace FILE.json`: the report
 * is one self-contained file that real headless Chromium loads from disk
 * with no console error and no network request, listing every check, with
 * charts holding the run's counter samples and a page layout per shared
 * buffer; its screenshot is not blank. Skipped, saying why, only when no
 * Chromium is installed (.ci/run installs Debian's package).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { failing, runJson } from '../launcher/cli.ts';
import { readTrace } from '../trace/run-views.ts';
import { findChromium } from './chromium.ts';
import { expectReportInChromium } from './report-check.ts';

const dir = mkdtempSync(join(tmpdir(), 'hdmabuf-report-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const chromium = findChromium();
if ('missing' in chromium) process.stderr.write(`test/report: SKIPPED, the report cannot be checked in a browser: ${chromium.missing}\n`);

describe.skipIf('missing' in chromium)('hdmabuf run --report in headless Chromium', () => {
  it('compositor: the report loads with no error or request, lists every check, charts every sample, shows each buffer', async () => {
    const report = join(dir, 'compositor.html');
    const trace = join(dir, 'compositor.json');
    const { code, result } = await runJson('compositor', ['--param', 'frames=20', '--report', report, '--trace', trace]);
    expect(failing(result)).toEqual([]);
    expect(code).toBe(0);
    expect(result.stats.report).toEqual({ file: report });
    const html = readFileSync(report, 'utf8');
    // One file: no script, stylesheet, image or frame from anywhere.
    expect(html).not.toMatch(/<script|<link|<img|<iframe|url\(|@import/i);
    // Three framebuffers, each with its runs of pages and its directory.
    expect(html.match(/<div class="layout"/g)).toHaveLength(3);
    await expectReportInChromium((chromium as { path: string }).path, report, result, readTrace(trace), 'compositor');
  }, 180_000);
});
