/**
 * `hdmabuf run compositor --report FILE.html --trace FILE.json`: the report
 * is one self-contained file that real headless Chromium loads from disk
 * with no console error and no network request, listing every check, with
 * charts holding the run's counter samples and a page layout per shared
 * buffer; its screenshot is not blank. The run's trace then opens in the
 * Performance panel of the DevTools inside that Chromium, which binds every
 * flow and draws a handoff's arrows. Skipped, saying why, only when no
 * Chromium is installed (.ci/run installs Debian's package).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { failing, runJson } from '../launcher/cli.ts';
import { readTrace } from '../trace/run-views.ts';
import { devtoolsView } from '../trace/devtools-engine.ts';
import { Browser, findChromium } from './chromium.ts';
import { openInPerformancePanel, showFlow } from './devtools-panel.ts';
import { pngStats } from './png.ts';
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
    await expectTraceInPerformancePanel((chromium as { path: string }).path, trace);
  }, 240_000);
});

/**
 * The same run's trace in the Performance panel of the DevTools inside Chromium (not only its trace engine
 * from npm, test/trace/devtools-engine.ts): the panel binds every flow the engine binds, shows the processes,
 * and draws a handoff's arrows from render through hv to the compositor. With HDMABUF_SCREENSHOT_DIR set,
 * that view is kept as trace-devtools.png (README "Opening a trace").
 */
async function expectTraceInPerformancePanel(chromiumPath: string, tracePath: string): Promise<void> {
  const text = readFileSync(tracePath, 'utf8');
  const engine = await devtoolsView(readTrace(tracePath).traceEvents);
  const browser = await Browser.launch(chromiumPath, 1600, 900);
  try {
    const view = await openInPerformancePanel(browser, text, 'compositor.json');
    expect(engine.flows.length).toBeGreaterThan(20);
    expect(view.flows).toBe(engine.flows.length);
    for (const p of ['hv', 'render (dom1)', 'compositor (dom2)', 'launcher (dom0)']) expect(view.tracks.some((t) => t.startsWith(`${p} (`)), p).toBe(true);
    const flow = await showFlow(browser, 'SIM_FRAME_HANDOFF', 8);
    // A routed request: sent by render, received and forwarded by hv, received by the compositor.
    expect(flow.map(([n]) => n.split(' ')[0]).sort()).toEqual(['recv', 'recv', 'send', 'send']);
    expect(new Set(flow.map(([, pid]) => pid)).size).toBe(3);
    const png = await browser.screenshot(false);
    expect(pngStats(png).colours).toBeGreaterThan(8);
    const keep = process.env.HDMABUF_SCREENSHOT_DIR;
    if (keep) writeFileSync(join(keep, 'trace-devtools.png'), png);
  } finally {
    await browser.close();
  }
}
