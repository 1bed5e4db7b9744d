/**
 * Line charts as inline SVG (no script, no external resource), for the run
 * report: one chart per group of counter tracks, time on x, one polyline
 * per series with a legend. The chart carries its sample count in
 * data-samples, which the report's test compares with the trace.
 */

/** One series of a chart. */
export interface Series {
  readonly name: string;
  /** [seconds since the run start, value], in time order. */
  readonly points: ReadonlyArray<readonly [number, number]>;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

/** Escapes text for HTML and SVG. */
export function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A compact number: 1234567 -> "1.23M". */
export function compact(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${+(n / 1e9).toPrecision(3)}G`;
  if (a >= 1e6) return `${+(n / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(n / 1e3).toPrecision(3)}k`;
  return `${+n.toPrecision(4)}`;
}

/** An SVG line chart of `series` over [0, durationS] seconds. */
export function lineChart(title: string, series: readonly Series[], durationS: number, width = 460, height = 170): string {
  const left = 48;
  const right = 8;
  const top = 22;
  const bottom = 20;
  const legendH = 14 * series.length;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const maxV = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[1])));
  const maxT = Math.max(durationS, ...series.flatMap((s) => s.points.map((p) => p[0])), 0.001);
  const x = (t: number): string => (left + (t / maxT) * plotW).toFixed(1);
  const y = (v: number): string => (top + plotH - (v / maxV) * plotH).toFixed(1);
  const samples = series.reduce((n, s) => n + s.points.length, 0);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="${width}" height="${height + legendH}" viewBox="0 0 ${width} ${height + legendH}" data-title="${esc(title)}" data-samples="${samples}" data-series="${series.length}" role="img" aria-label="${esc(title)}">`);
  parts.push(`<text x="${left}" y="14" class="ct">${esc(title)}</text>`);
  parts.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" class="plot"/>`);
  for (const f of [0, 0.5, 1]) {
    const v = maxV * f;
    parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${y(v)}" y2="${y(v)}" class="grid"/><text x="${left - 4}" y="${(+y(v) + 4).toFixed(1)}" class="ax" text-anchor="end">${compact(v)}</text>`);
  }
  for (const f of [0, 0.5, 1]) parts.push(`<text x="${x(maxT * f)}" y="${height - 5}" class="ax" text-anchor="middle">${(maxT * f).toFixed(1)} s</text>`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    // A step line: a counter keeps its value until the next sample.
    const pts: string[] = [];
    s.points.forEach(([t, v], k) => {
      if (k > 0) pts.push(`${x(t)},${y(s.points[k - 1]![1])}`);
      pts.push(`${x(t)},${y(v)}`);
    });
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${pts.join(' ')}"/>`);
    const lx = left;
    const ly = height + 10 + i * 14;
    const last = s.points.at(-1)?.[1];
    parts.push(`<rect x="${lx}" y="${ly - 8}" width="10" height="3" fill="${color}"/><text x="${lx + 14}" y="${ly}" class="lg">${esc(s.name)}${last !== undefined ? ` (last ${compact(last)}, max ${compact(Math.max(...s.points.map((p) => p[1])))})` : ''}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}
