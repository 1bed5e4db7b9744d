/**
 * The bench's figures as one SVG picture (docs/pictures/bench.svg, shown in
 * README "Benchmarks"), drawn from a recorded report alone, so that the
 * picture and the README's tables always come from the same run:
 *
 * 1. the scale curve: first share on the newest-version pair and on the
 *    v1-only pair, one warm memcpy of the same bytes, and the steady handoff
 *    round trip, against buffer size, both axes logarithmic; every trial is
 *    a dot, the medians are joined by lines (the handoff: its median with a
 *    bar from the 10th to the 90th percentile of its round trips);
 * 2. every figure's trials beside its baseline's, each relative to the
 *    baseline's median (1 = the baseline), so that figures of different
 *    units share one axis: the ratio, and how much the trials spread.
 *
 * Every mark carries data-* attributes naming what it is (series, size,
 * figure, kind), so a test can count them against the recording.
 */
import { fmt, fmtBytes } from './format.ts';
import type { BenchReport, BenchResult } from './types.ts';

/** Where `npm run bench:readme` writes the picture, relative to the repository's root. */
export const PLOT_PATH = 'docs/pictures/bench.svg';

/** Figures with more trials than this are drawn as percentiles, not as a dot per trial. */
export const MAX_DOTS = 60;

const W = 960;
const FONT = 'font-family="DejaVu Sans, Arial, sans-serif" font-size="12"';
const COLOURS = { share: '#1f6fd1', shareV1: '#e07b16', memcpy: '#6b6b6b', handoff: '#1d9a4b', baseline: '#9a9a9a' } as const;

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
/** A coordinate, fixed to one decimal so the file is the same on every machine. */
const n = (x: number): string => x.toFixed(1);

/** A logarithmic axis mapping [lo, hi] onto [a, b]. */
function logScale(lo: number, hi: number, a: number, b: number): (v: number) => number {
  const l0 = Math.log10(lo);
  const span = Math.log10(hi) - l0 || 1;
  return (v) => a + ((Math.log10(Math.max(v, lo)) - l0) / span) * (b - a);
}

/** Powers of ten covering [lo, hi]. */
function decades(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
  return out;
}

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const i = (s.length - 1) * q;
  const lo = Math.floor(i);
  return s[lo]! + (s[Math.ceil(i)]! - s[lo]!) * (i - lo);
}

/** A decade's label: "0.01 ms", "100 ms", "1 s". */
function msLabel(ms: number): string {
  return ms >= 1000 ? `${Number((ms / 1000).toPrecision(1))} s` : `${Number(ms.toPrecision(1))} ms`;
}

/** Panel 1: the scale curve. Returns its SVG elements; `top` is its upper edge. */
function scalePanel(r: BenchReport, top: number): { svg: string[]; height: number } {
  const out: string[] = [];
  const height = 380;
  const left = 80;
  const right = W - 200;
  const plotTop = top + 40;
  const plotBottom = top + height - 40;
  const sizes = r.scale.map((s) => s.bytes);
  const ms = r.scale.flatMap((s) => [...s.shareSamples, ...s.shareV1Samples, ...s.memcpySamples, s.handoffUs / 1000, quantile(s.handoffSamples, 0.1) / 1000, quantile(s.handoffSamples, 0.9) / 1000]).filter((v) => v > 0);
  const yTicks = decades(Math.min(...ms), Math.max(...ms));
  const x = logScale(Math.min(...sizes) / 1.6, Math.max(...sizes) * 1.6, left, right);
  const y = logScale(yTicks[0]!, yTicks[yTicks.length - 1]!, plotBottom, plotTop);
  out.push(`<text x="20" y="${top + 18}" font-size="15" font-weight="bold">Scale curve: first share and handoff vs buffer size (v${r.versions.newest} and v${r.versions.v1}), one memcpy beside it</text>`);
  for (const t of yTicks) {
    out.push(`<line x1="${left}" x2="${right}" y1="${n(y(t))}" y2="${n(y(t))}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${left - 6}" y="${n(y(t) + 4)}" text-anchor="end">${esc(msLabel(t))}</text>`);
  }
  for (const s of sizes) {
    out.push(`<line x1="${n(x(s))}" x2="${n(x(s))}" y1="${plotTop}" y2="${plotBottom}" stroke="#f0f0f0"/>`);
    out.push(`<text x="${n(x(s))}" y="${plotBottom + 16}" text-anchor="middle">${esc(fmtBytes(s))}</text>`);
  }
  out.push(`<rect x="${left}" y="${plotTop}" width="${right - left}" height="${plotBottom - plotTop}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${(left + right) / 2}" y="${plotBottom + 34}" text-anchor="middle">buffer size (high-order chunks; log scale)</text>`);
  const series: Array<{ key: keyof typeof COLOURS; label: string; median: (i: number) => number; samples: (i: number) => number[] }> = [
    { key: 'share', label: `first share (v${r.versions.newest} pair)`, median: (i) => r.scale[i]!.shareMs, samples: (i) => r.scale[i]!.shareSamples },
    { key: 'shareV1', label: `first share (v${r.versions.v1}-only pair)`, median: (i) => r.scale[i]!.shareV1Ms, samples: (i) => r.scale[i]!.shareV1Samples },
    { key: 'memcpy', label: 'one warm memcpy', median: (i) => r.scale[i]!.memcpyMs, samples: (i) => r.scale[i]!.memcpySamples },
  ];
  for (const s of series) {
    const c = COLOURS[s.key];
    out.push(`<polyline data-series="${s.key}" fill="none" stroke="${c}" stroke-width="2" points="${r.scale.map((row, i) => `${n(x(row.bytes))},${n(y(s.median(i)))}`).join(' ')}"/>`);
    r.scale.forEach((row, i) => {
      for (const v of s.samples(i)) out.push(`<circle data-series="${s.key}" data-bytes="${row.bytes}" cx="${n(x(row.bytes))}" cy="${n(y(v))}" r="3" fill="${c}" fill-opacity="0.55"/>`);
    });
  }
  // The handoff: hundreds of round trips per size, drawn as median and 10th..90th percentile.
  const hc = COLOURS.handoff;
  out.push(`<polyline data-series="handoff" fill="none" stroke="${hc}" stroke-width="2" stroke-dasharray="6 3" points="${r.scale.map((row) => `${n(x(row.bytes))},${n(y(row.handoffUs / 1000))}`).join(' ')}"/>`);
  for (const row of r.scale) {
    const p10 = quantile(row.handoffSamples, 0.1) / 1000;
    const p90 = quantile(row.handoffSamples, 0.9) / 1000;
    out.push(`<line data-series="handoff" data-bytes="${row.bytes}" data-samples="${row.handoffSamples.length}" x1="${n(x(row.bytes))}" x2="${n(x(row.bytes))}" y1="${n(y(p10))}" y2="${n(y(p90))}" stroke="${hc}" stroke-width="5" stroke-opacity="0.5"/>`);
  }
  const legend = [...series.map((s) => [COLOURS[s.key], `${s.label}: each trial, median joined`] as const), [hc, `handoff round trip (v${r.versions.newest} pair): median, 10th-90th percentile`] as const];
  legend.forEach(([c, label], i) => {
    const ly = plotTop + 10 + i * 50;
    out.push(`<rect x="${right + 14}" y="${ly - 9}" width="12" height="12" fill="${c}"/>`);
    out.push(`<text x="${right + 32}" y="${ly + 1}" font-size="11">${wrap(label, 26).map((l, j) => `<tspan x="${right + 32}" dy="${j === 0 ? 0 : 13}">${esc(l)}</tspan>`).join('')}</text>`);
  });
  return { svg: out, height };
}

/** Splits text into lines of at most `width` characters, at spaces. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) { lines.push(line); line = word; } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

/** The number every sample of a figure is divided by: its baseline's median, or its own when it has no baseline. */
function unitOf(x: BenchResult): number {
  return x.baseline !== null && x.baseline > 0 ? x.baseline : x.value;
}

/** Panel 2: each figure's trials and its baseline's, relative to the baseline's median. */
function figuresPanel(r: BenchReport, top: number): { svg: string[]; height: number } {
  const out: string[] = [];
  const rowH = 22;
  const left = 300;
  const right = W - 190;
  const plotTop = top + 52;
  const height = 52 + r.results.length * rowH + 50;
  const plotBottom = plotTop + r.results.length * rowH;
  const rel = r.results.flatMap((x) => [...x.samples.value, ...x.samples.baseline, x.value].map((v) => v / unitOf(x))).filter((v) => v > 0);
  const ticks = decades(Math.min(...rel), Math.max(...rel));
  const x = logScale(ticks[0]!, ticks[ticks.length - 1]!, left, right);
  out.push(`<text x="20" y="${top + 18}" font-size="15" font-weight="bold">Every figure's trials beside its baseline's, relative to the baseline's median (1 = the baseline)</text>`);
  out.push(`<text x="20" y="${top + 36}" font-size="11" fill="#555">● the figure's trials (median: tall bar), ○ the baseline's trials (median: grey bar); more than ${MAX_DOTS} trials: 10th-90th percentile band. Right: the figure's median.</text>`);
  for (const t of ticks) {
    out.push(`<line x1="${n(x(t))}" x2="${n(x(t))}" y1="${plotTop}" y2="${plotBottom}" stroke="${t === 1 ? '#999' : '#e3e3e3'}"/>`);
    out.push(`<text x="${n(x(t))}" y="${plotBottom + 16}" text-anchor="middle">${Number(t.toPrecision(1))}x</text>`);
  }
  out.push(`<text x="${(left + right) / 2}" y="${plotBottom + 34}" text-anchor="middle">value / the baseline's median (log scale)</text>`);
  r.results.forEach((fig, i) => {
    const cy = plotTop + i * rowH + rowH / 2;
    const u = unitOf(fig);
    if (i % 2 === 0) out.push(`<rect x="20" y="${n(cy - rowH / 2)}" width="${W - 40}" height="${rowH}" fill="#f6f8fb"/>`);
    out.push(`<text x="${left - 8}" y="${n(cy + 4)}" text-anchor="end" font-size="11">${esc(fig.id)} (v${fig.version})</text>`);
    for (const [kind, samples, colour, filled] of [['baseline', fig.samples.baseline, COLOURS.baseline, false], ['value', fig.samples.value, COLOURS.share, true]] as const) {
      if (samples.length > MAX_DOTS) {
        const a = x(quantile(samples, 0.1) / u);
        const b = x(quantile(samples, 0.9) / u);
        out.push(`<rect data-figure="${esc(fig.id)}" data-kind="${kind}" data-samples="${samples.length}" x="${n(Math.min(a, b))}" y="${n(cy - 4)}" width="${n(Math.max(Math.abs(b - a), 1))}" height="8" fill="${colour}" fill-opacity="0.45"/>`);
      } else {
        for (const v of samples) {
          out.push(`<circle data-figure="${esc(fig.id)}" data-kind="${kind}" cx="${n(x(v / u))}" cy="${n(cy)}" r="3.5" ${filled ? `fill="${colour}" fill-opacity="0.6"` : `fill="none" stroke="${colour}" stroke-width="1.3"`}/>`);
        }
      }
    }
    if (fig.baseline !== null) out.push(`<line x1="${n(x(1))}" x2="${n(x(1))}" y1="${n(cy - 7)}" y2="${n(cy + 7)}" stroke="${COLOURS.baseline}" stroke-width="2"/>`);
    out.push(`<line data-figure="${esc(fig.id)}" data-kind="median" x1="${n(x(fig.value / u))}" x2="${n(x(fig.value / u))}" y1="${n(cy - 9)}" y2="${n(cy + 9)}" stroke="${COLOURS.share}" stroke-width="2.5"/>`);
    const met = fig.met === null ? '' : fig.met ? ' (target met)' : ' (target NOT met)';
    out.push(`<text x="${right + 8}" y="${n(cy + 4)}" font-size="11"${fig.met === false ? ' fill="#b00020"' : ''}>${esc(`${fmt(fig.value, fig.unit)}${met}`)}</text>`);
  });
  return { svg: out, height };
}

/** The whole picture, from a recorded report. */
export function renderPlot(r: BenchReport): string {
  const head = `Recorded ${r.date} at commit ${r.commit.sha.slice(0, 12)} on ${r.machine.cpus} x ${r.machine.cpuModel}; load ${r.load.start.map((l) => l.toFixed(2)).join(' ')} at the start${r.quick ? '; --quick: small sizes, not figures to quote' : ''}`;
  const scale = scalePanel(r, 30);
  const figures = figuresPanel(r, 30 + scale.height + 10);
  const height = 30 + scale.height + 10 + figures.height;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" ${FONT}>`,
    `<title>hdmabuf bench: ${esc(r.date)}</title>`,
    `<rect width="${W}" height="${height}" fill="#ffffff"/>`,
    `<text x="20" y="20" font-size="11" fill="#555">${esc(head)}</text>`,
    ...scale.svg,
    ...figures.svg,
    '</svg>',
    '',
  ].join('\n');
}
