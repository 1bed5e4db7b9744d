/**
 * npm run bench:readme [-- --check]
 *
 * Rewrites the benchmark block of README.md from vm-sim/bench/recorded.json
 * (written by `npm run bench -- --out vm-sim/bench/recorded.json`, or both at
 * once by `npm run bench:record`). --check changes nothing and exits 1 when
 * the block and the recording disagree.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { extractBlock, RECORDED_PATH, renderBlock, replaceBlock } from './readme.ts';
import type { BenchReport } from './types.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const { values } = parseArgs({ options: { check: { type: 'boolean' } }, strict: true });
const readmePath = `${ROOT}README.md`;
const report = JSON.parse(readFileSync(`${ROOT}${RECORDED_PATH}`, 'utf8')) as BenchReport;
const readme = readFileSync(readmePath, 'utf8');
const block = renderBlock(report);
if (values.check) {
  const same = extractBlock(readme) === block;
  process.stdout.write(same ? 'README.md matches the recorded run\n' : `README.md's benchmark block differs from ${RECORDED_PATH}: run npm run bench:readme\n`);
  process.exit(same ? 0 : 1);
}
writeFileSync(readmePath, replaceBlock(readme, block));
process.stdout.write(`README.md: benchmark block rewritten from ${RECORDED_PATH} (${report.date})\n`);
