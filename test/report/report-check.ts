/**
 * Loads a run report in real headless Chromium and checks it as a person
 * would see it: it loads from disk with no console error, no exception and
 * no request but its own file; it lists every check of the run; its charts
 * hold the run's counter samples (the same counts as the trace); a
 * screenshot is not blank. With HDMABUF_SCREENSHOT_DIR set, the screenshot
 * is kept there (the README's pictures are made so).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'vitest';
import type { RunResult } from '../../vm-sim/launcher/result.ts';
import type { ChromeTrace } from '../../vm-sim/trace/chrome.ts';
import { Browser } from './chromium.ts';
import { pngStats } from './png.ts';

/** Counter samples per process name in a trace (one sample: one time of one process). */
export function samplesPerProcess(trace: ChromeTrace): Map<string, number> {
  const names = new Map(trace.traceEvents.filter((e) => e.name === 'process_name').map((e) => [e.pid, (e.args as { name: string }).name]));
  const times = new Map<string, Set<number>>();
  for (const e of trace.traceEvents) {
    if (e.ph !== 'C') continue;
    const n = names.get(e.pid)!;
    if (!times.has(n)) times.set(n, new Set());
    times.get(n)!.add(e.ts!);
  }
  return new Map([...times].map(([n, s]) => [n, s.size]));
}

/** Opens the report in Chromium and checks it; `name` names the kept screenshot. */
export async function expectReportInChromium(chromium: string, reportPath: string, result: RunResult, trace: ChromeTrace | undefined, name: string): Promise<void> {
  const browser = await Browser.launch(chromium, 1200, 900);
  try {
    const url = pathToFileURL(reportPath).href;
    const log = await browser.load(url);
    expect(log.consoleErrors).toEqual([]);
    expect(log.exceptions).toEqual([]);
    // Self-contained: the only request is the file itself.
    expect(log.requests.filter((u) => u !== url)).toEqual([]);

    const page = await browser.evaluate<{ title: string; checks: number; charts: Array<[string, number]>; svgs: Array<[number, number]>; layouts: number; seq: number }>(`(() => ({
      title: document.querySelector('h1').textContent,
      checks: document.querySelectorAll('table.checks tr').length - 1,
      charts: [...document.querySelectorAll('div.charts')].map((d) => [d.dataset.process, Number(d.dataset.samples)]),
      svgs: [...document.querySelectorAll('svg.chart')].map((s) => [Number(s.dataset.series), s.querySelectorAll('polyline').length]),
      layouts: document.querySelectorAll('div.layout').length,
      seq: document.querySelectorAll('table.seq tr').length,
    }))()`);
    expect(page.title).toBe(`${result.scenario}: ${result.ok ? 'ok' : 'FAILED'}`);
    expect(page.checks).toBe(result.checks.length);
    expect(page.charts.length).toBeGreaterThanOrEqual(3);
    if (trace) expect(new Map(page.charts)).toEqual(samplesPerProcess(trace));
    for (const [series, lines] of page.svgs) expect(lines).toBe(series);
    expect(page.layouts).toBeGreaterThan(0);
    expect(page.seq).toBeGreaterThan(10);

    const png = await browser.screenshot(false);
    const stats = pngStats(png);
    expect(stats.width).toBe(1200);
    expect(stats.inked).toBeGreaterThan(0.02);
    expect(stats.colours).toBeGreaterThan(8);
    const keep = process.env.HDMABUF_SCREENSHOT_DIR;
    if (keep) {
      writeFileSync(join(keep, `report-${name}.png`), png);
      writeFileSync(join(keep, `report-${name}-counters.png`), await browser.screenshotFrom('counters', 1100));
      writeFileSync(join(keep, `report-${name}-layouts.png`), await browser.screenshotFrom('layouts', 700));
    }
  } finally {
    await browser.close();
  }
}
