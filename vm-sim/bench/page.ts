/**
 * A bench report as one self-contained HTML page, like the run report
 * (`hdmabuf run --report`): inline CSS and SVG, no script, nothing fetched,
 * opens from disk. It holds the run's machine and load, the picture of
 * plot.ts (the scale curve and every figure's trials), and the figures and
 * scale-curve tables the terminal and the README show.
 */
import { backendLine, RESULT_HEAD, resultCells, resultNotes, runLine, scaleCells, scaleHead } from './format.ts';
import { renderPlot } from './plot.ts';
import type { BenchReport } from './types.ts';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function table(cls: string, head: readonly string[], rows: readonly string[][]): string {
  return `<table class="${cls}"><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${rows.map((r) => `<tr>${r.map((c) => `<td${c === 'NOT met' ? ' class="fail"' : ''}>${esc(c)}</td>`).join('')}</tr>`).join('')}</table>`;
}

/** The page's HTML text. */
export function renderBenchPage(r: BenchReport): string {
  const title = `hdmabuf bench, ${r.date}${r.quick ? ' (quick)' : ''}`;
  const svg = renderPlot(r).replace(/^<svg /, '<svg class="plot" ');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${esc(title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:16px 24px;color:#222;max-width:1400px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:22px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
.sub{color:#666;margin:0 0 8px} .fail{color:#b00020;font-weight:bold}
table{border-collapse:collapse;font-size:12px} td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top} th{background:#f3f3f3}
ul.notes{font-size:12px;color:#444} footer{margin-top:28px;color:#888;font-size:12px}
</style></head>
<body>
<h1>${esc(title)}</h1>
<p class="sub">${esc(runLine(r))}</p>
<section id="plot"><h2>Figures drawn</h2>
${svg}</section>
<section id="figures"><h2>Figures</h2>
${table('figures', RESULT_HEAD, r.results.map(resultCells))}
<ul class="notes">${resultNotes(r.results).map((n) => `<li>${esc(n)}</li>`).join('')}</ul></section>
<section id="scale"><h2>Scale curve</h2>
${table('scale', scaleHead(r), r.scale.map(scaleCells))}
<p class="sub">${esc(backendLine(r))}</p></section>
<footer>Written by <code>npm run bench:plot</code> from a report of <code>npm run bench -- --out FILE</code>.</footer>
</body></html>
`;
}
