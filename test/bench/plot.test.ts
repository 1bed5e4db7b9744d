/**
 * The bench's picture (docs/pictures/bench.svg, shown in README
 * "Benchmarks") is drawn from the committed recording alone: this fails when
 * the two disagree (run `npm run bench:readme`), and checks that the picture
 * holds every trial of the recording: a dot per trial of each scale-curve
 * series and of each figure and its baseline (or a percentile band where a
 * figure has too many trials for dots). Cheap: no benchmark runs here.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { renderBenchPage } from '../../vm-sim/bench/page.ts';
import { MAX_DOTS, PLOT_PATH, renderPlot } from '../../vm-sim/bench/plot.ts';
import { RECORDED_PATH } from '../../vm-sim/bench/readme.ts';
import type { BenchReport } from '../../vm-sim/bench/types.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const recorded = JSON.parse(readFileSync(`${ROOT}${RECORDED_PATH}`, 'utf8')) as BenchReport;
const committed = readFileSync(`${ROOT}${PLOT_PATH}`, 'utf8');

/** Elements of `tag` whose attributes include every one of `attrs`. */
function marks(svg: string, tag: string, attrs: Record<string, string | number>): string[] {
  return [...svg.matchAll(new RegExp(`<${tag} [^>]*>`, 'g'))].map((m) => m[0]).filter((el) => Object.entries(attrs).every(([k, v]) => el.includes(` ${k}="${v}"`)));
}

describe('docs/pictures/bench.svg', () => {
  it('is exactly what the recorded run draws, and README shows it', () => {
    expect(committed).toBe(renderPlot(recorded));
    expect(readFileSync(`${ROOT}README.md`, 'utf8')).toContain(`](${PLOT_PATH})`);
  });

  it('stops matching when any recorded trial changes', () => {
    const scale = structuredClone(recorded);
    scale.scale[2]!.shareV1Samples[0]! *= 1.5;
    expect(renderPlot(scale)).not.toBe(committed);
    const figure = structuredClone(recorded);
    figure.results[3]!.samples.baseline[0]! *= 0.5;
    expect(renderPlot(figure)).not.toBe(committed);
  });

  it('has the scale curve of every size: a dot per trial of first share (both pairs) and memcpy, the handoff over all its round trips', () => {
    expect(recorded.scale.length).toBeGreaterThan(2);
    for (const row of recorded.scale) {
      expect(marks(committed, 'circle', { 'data-series': 'share', 'data-bytes': row.bytes })).toHaveLength(row.shareSamples.length);
      expect(marks(committed, 'circle', { 'data-series': 'shareV1', 'data-bytes': row.bytes })).toHaveLength(row.shareV1Samples.length);
      expect(marks(committed, 'circle', { 'data-series': 'memcpy', 'data-bytes': row.bytes })).toHaveLength(row.memcpySamples.length);
      expect(marks(committed, 'line', { 'data-series': 'handoff', 'data-bytes': row.bytes, 'data-samples': row.handoffSamples.length })).toHaveLength(1);
    }
    for (const series of ['share', 'shareV1', 'memcpy', 'handoff']) {
      const line = marks(committed, 'polyline', { 'data-series': series });
      expect(line, series).toHaveLength(1);
      expect(/points="([^"]*)"/.exec(line[0]!)![1]!.split(' ')).toHaveLength(recorded.scale.length);
    }
  });

  it('has every figure\'s trials and its baseline\'s, and its median', () => {
    for (const fig of recorded.results) {
      for (const kind of ['value', 'baseline'] as const) {
        const samples = fig.samples[kind];
        if (samples.length > MAX_DOTS) expect(marks(committed, 'rect', { 'data-figure': fig.id, 'data-kind': kind, 'data-samples': samples.length }), `${fig.id} ${kind}`).toHaveLength(1);
        else expect(marks(committed, 'circle', { 'data-figure': fig.id, 'data-kind': kind }), `${fig.id} ${kind}`).toHaveLength(samples.length);
      }
      expect(marks(committed, 'line', { 'data-figure': fig.id, 'data-kind': 'median' }), fig.id).toHaveLength(1);
    }
  });
});

describe('npm run bench:plot -- --html FILE', () => {
  it('is one self-contained page: the picture inline, a row per figure and per scale size, nothing fetched, no script', () => {
    const html = renderBenchPage(recorded);
    // The SVG namespace is a name, not a request.
    expect(html.replace(/xmlns="[^"]*"/g, '')).not.toMatch(/<script|<link|<img|<iframe|url\(|@import|https?:/i);
    expect(html).toContain(renderPlot(recorded).replace(/^<svg /, '<svg class="plot" '));
    expect(/<table class="figures">([\s\S]*?)<\/table>/.exec(html)![1]!.match(/<tr>/g)).toHaveLength(recorded.results.length + 1);
    expect(/<table class="scale">([\s\S]*?)<\/table>/.exec(html)![1]!.match(/<tr>/g)).toHaveLength(recorded.scale.length + 1);
  });
});
