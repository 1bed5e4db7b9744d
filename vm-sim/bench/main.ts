/**
 * npm run bench [-- --json] [-- --quick]
 *
 * Measures every figure of the issue in ONE run, on the same processes: a
 * backend, an exporter VM, an importer VM, and the extra importers of the
 * fan-out. Each figure is a median over repeated trials, compared with a
 * baseline measured in the same run (ratio, target, met). Timings are taken
 * inside the VMs on the shared clock, never across the launcher's IPC.
 * --quick runs every figure at small sizes, once (for the test of the
 * report's shape; not figures to quote). Exit code 0 when the run completed
 * without leaks (a missed target is reported, not an error).
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { Run } from '../launcher/run.ts';
import { guardSignals } from '../launcher/signals.ts';
import { exporterGrantFrames, exporterPages, FULL, QUICK } from './config.ts';
import type { BenchContext } from './context.ts';
import { exportsFigure } from './exports-figures.ts';
import { handoffFigure, throughputFigure } from './handoff-figures.ts';
import { reportLines } from './report.ts';
import { fanOutFigure, shareFigures } from './share-figures.ts';
import type { BenchReport, BenchResult } from './types.ts';

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { json: { type: 'boolean' }, quick: { type: 'boolean' }, 'run-tag': { type: 'string' } }, strict: true });
  const json = values.json === true;
  const config = values.quick ? QUICK : FULL;
  const out = json ? process.stderr : process.stdout;
  const log = (line: string): void => { out.write(`[bench] ${line}\n`); };
  const guard = guardSignals(log);
  const t0 = performance.now();
  const run = await Run.start({ log, readyTimeoutMs: 180_000, ...(values['run-tag'] ? { runTag: values['run-tag'] } : {}) });
  let results: BenchResult[] = [];
  let failure: unknown;
  // Ctrl-C: stop at once (the VMs go, their pending calls fail, the figure in progress ends).
  guard.signal.addEventListener('abort', () => void run.stop(), { once: true });
  try {
    const vms = await run.addDomains([
      { name: 'exporter', memPages: exporterPages(config), maxGrantFrames: exporterGrantFrames(config) },
      { name: 'importer', memPages: 16_384 },
      ...Array.from({ length: config.fanOut - 1 }, (_, i) => ({ name: `fan${i + 2}`, memPages: 4096 })),
    ]);
    log(`started: hv pid ${run.hv.pid}, ${vms.map((v) => `${v.name} pid ${v.pid}`).join(', ')}`);
    const ctx: BenchContext = { run, config, exporter: vms[0]!, importer: vms[1]!, fans: vms.slice(1), log };
    // Exports last: it leaves the most behind in the importer's queue (drained) and tables (freed).
    for (const figure of [shareFigures, handoffFigure, throughputFigure, fanOutFigure, exportsFigure]) {
      if (guard.signal.aborted) throw new Error(`interrupted by ${String(guard.signal.reason)}`);
      const got = await figure(ctx);
      for (const r of got) log(`${r.id}: ${r.value} ${r.unit}${r.ratio !== null ? `, ratio ${r.ratio}` : ''}${r.met !== null ? ` (${r.target}: ${r.met ? 'met' : 'NOT met'})` : ''}`);
      results = [...results, ...got];
    }
  } catch (e) {
    failure = e;
  } finally {
    guard.dispose();
  }
  const report = await run.stop();
  const full: BenchReport = {
    bench: 'hdmabuf', quick: config.quick,
    machine: { cpus: cpus().length, node: process.version, platform: process.platform },
    results, leaks: report.leaks, durationMs: Math.round(performance.now() - t0),
  };
  if (failure) process.stderr.write(`[bench] failed: ${(failure as Error).stack ?? String(failure)}\n`);
  const text = json ? `${JSON.stringify(full, null, 2)}\n` : `${reportLines(full).join('\n')}\n`;
  await new Promise<void>((resolve) => process.stdout.write(text, () => resolve()));
  const leaked = Object.values(report.leaks).some((n) => n !== 0);
  return failure || leaked ? 1 : 0;
}

main().then((code) => process.exit(code), (e: unknown) => {
  process.stderr.write(`[bench] ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
