/**
 * npm run bench:plot [-- --in FILE] [--svg FILE] [--html FILE]
 *
 * Draws a bench report (the JSON of `npm run bench -- --out FILE`; default:
 * the committed recording, vm-sim/bench/recorded.json): --svg writes the
 * picture (plot.ts), --html the whole report as one self-contained page
 * (page.ts). With neither, the SVG goes to stdout.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { renderBenchPage } from './page.ts';
import { renderPlot } from './plot.ts';
import { RECORDED_PATH } from './readme.ts';
import type { BenchReport } from './types.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const { values } = parseArgs({ options: { in: { type: 'string' }, svg: { type: 'string' }, html: { type: 'string' } }, strict: true });
const input = values.in ?? `${ROOT}${RECORDED_PATH}`;
const report = JSON.parse(readFileSync(input, 'utf8')) as BenchReport;
if (!Array.isArray(report.results) || !Array.isArray(report.scale)) {
  process.stderr.write(`${input}: not a bench report (no results or scale)\n`);
  process.exit(2);
}
if (values.svg) writeFileSync(values.svg, renderPlot(report));
if (values.html) writeFileSync(values.html, renderBenchPage(report));
if (!values.svg && !values.html) process.stdout.write(renderPlot(report));
else process.stderr.write(`drawn from ${input}:${values.svg ? ` ${values.svg}` : ''}${values.html ? ` ${values.html}` : ''}\n`);
