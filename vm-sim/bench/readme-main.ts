/**
 * npm run bench:readme [-- --check]
 *
 * Rewrites the benchmark block of README.md and its picture
 * (docs/pictures/bench.svg, plot.ts) from vm-sim/bench/recorded.json
 * (written by `npm run bench -- --out vm-sim/bench/recorded.json`, or all at
 * once by `npm run bench:record`). --check changes nothing and exits 1 when
 * the block or the picture and the recording disagree.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PLOT_PATH, renderPlot } from './plot.ts';
import { extractBlock, RECORDED_PATH, renderBlock, replaceBlock } from './readme.ts';
import type { BenchReport } from './types.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const { values } = parseArgs({ options: { check: { type: 'boolean' } }, strict: true });
const readmePath = `${ROOT}README.md`;
const report = JSON.parse(readFileSync(`${ROOT}${RECORDED_PATH}`, 'utf8')) as BenchReport;
const readme = readFileSync(readmePath, 'utf8');
const block = renderBlock(report);
const plot = renderPlot(report);
const plotPath = `${ROOT}${PLOT_PATH}`;
if (values.check) {
  const sameBlock = extractBlock(readme) === block;
  const samePlot = existsSync(plotPath) && readFileSync(plotPath, 'utf8') === plot;
  process.stdout.write(sameBlock ? 'README.md matches the recorded run\n' : `README.md's benchmark block differs from ${RECORDED_PATH}: run npm run bench:readme\n`);
  process.stdout.write(samePlot ? `${PLOT_PATH} matches the recorded run\n` : `${PLOT_PATH} differs from ${RECORDED_PATH}: run npm run bench:readme\n`);
  process.exit(sameBlock && samePlot ? 0 : 1);
}
writeFileSync(readmePath, replaceBlock(readme, block));
writeFileSync(plotPath, plot);
process.stdout.write(`README.md: benchmark block rewritten from ${RECORDED_PATH} (${report.date}); ${PLOT_PATH} drawn from it\n`);
