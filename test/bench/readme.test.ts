/**
 * The README's benchmark block is generated from the committed recording
 * (vm-sim/bench/recorded.json): this fails when the two disagree (run
 * `npm run bench:readme`), or when the recording is not a full, clean run
 * of every figure. Cheap: no benchmark runs here.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FULL } from '../../vm-sim/bench/config.ts';
import { BLOCK_BEGIN, BLOCK_END, extractBlock, RECORDED_PATH, renderBlock, replaceBlock } from '../../vm-sim/bench/readme.ts';
import type { BenchReport } from '../../vm-sim/bench/types.ts';
import { BENCH_IDS } from './ids.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const readme = readFileSync(`${ROOT}README.md`, 'utf8');
const recorded = JSON.parse(readFileSync(`${ROOT}${RECORDED_PATH}`, 'utf8')) as BenchReport;

describe('README benchmark block', () => {
  it('is exactly what the recorded run renders to', () => {
    expect(extractBlock(readme)).toBe(renderBlock(recorded));
  });

  it('stops matching when any recorded figure changes', () => {
    const changed = structuredClone(recorded);
    changed.results[0]!.value *= 1.5;
    expect(renderBlock(changed)).not.toBe(extractBlock(readme));
    const scale = structuredClone(recorded);
    scale.scale[0]!.handoffUs += 1;
    expect(renderBlock(scale)).not.toBe(extractBlock(readme));
  });

  it('the recording is a full run of every figure and every scale size, with samples, that leaked nothing', () => {
    expect(recorded.quick).toBe(false);
    expect(recorded.results.map((x) => x.id)).toEqual(BENCH_IDS);
    expect(recorded.scale.map((s) => s.bytes)).toEqual(FULL.scaleSizes);
    expect(recorded.leaks).toEqual({ busyGrants: 0, mappings: 0, processes: 0, shmFiles: 0 });
    expect(recorded.commit.sha).toMatch(/^[0-9a-f]{40}$/);
    for (const x of recorded.results) expect(x.samples.value.length, x.id).toBeGreaterThan(0);
  });
});

describe('README block generation', () => {
  it('replaces only what is between the markers, and refuses a README without them', () => {
    const doc = `# t\n\nbefore\n${BLOCK_BEGIN}\nold\n${BLOCK_END}\nafter\n`;
    const out = replaceBlock(doc, 'new | block');
    expect(out).toBe(`# t\n\nbefore\n${BLOCK_BEGIN}\nnew | block\n${BLOCK_END}\nafter\n`);
    expect(extractBlock(out)).toBe('new | block');
    expect(replaceBlock(out, 'new | block')).toBe(out);
    expect(() => replaceBlock('# no block\n', 'x')).toThrow(/no benchmark block/);
  });

  it('renders the run\'s machine, load and date, every figure with its target, and a missed target in bold', () => {
    const r = structuredClone(recorded);
    r.results = [r.results[0]!];
    r.results[0] = { ...r.results[0]!, name: 'a | b', value: 2, baseline: 5, ratio: 2.5, target: 'ratio >= 20', targetSource: 'issue', met: false };
    r.load = { start: [9, 8, 7], end: [1, 1, 1] };
    const block = renderBlock(r);
    expect(block).toContain('| a \\| b | 2.00');
    expect(block).toContain('| 2.50x | - | ratio >= 20 | **NOT met** |');
    r.results[0] = { ...r.results[0]!, ratioSpread: [1.25, 3] };
    expect(renderBlock(r)).toContain('| 2.50x | 1.25x to 3.00x | ratio >= 20 | **NOT met** |');
    expect(block).toContain(`commit ${r.commit.sha.slice(0, 12)}`);
    expect(block).toContain(r.date);
    expect(block).toContain('load average 9.00 8.00 7.00 at the start');
    expect(block).toContain('a loaded machine: provisional figures');
    expect(block).toContain(`Node ${r.machine.node}`);
  });
});
