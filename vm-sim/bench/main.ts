/**
 * npm run bench [-- --json] [-- --out FILE] [-- --quick] [-- --only 4k|share-4k|round-trip] [-- --trials N]
 *
 * Measures every figure of the issue in ONE run, on the same processes: a
 * backend; an exporter VM and an importer VM on the newest protocol version
 * both speak; a second pair that offers only protocol v1 (so that the gain
 * of a newer version is a ratio from one run); and the extra importers of
 * the fan-out. Each figure is a median over repeated trials, compared with a
 * baseline measured in the same run (ratio, target, met). Timings are taken
 * inside the VMs on the shared clock, never across the launcher's IPC.
 *
 * --json prints the report (every trial's samples, the commit, the date,
 * the load average, the machine) instead of the table; --out FILE writes
 * that JSON to FILE as well, only when the run completed without failure or
 * leak. --quick runs every figure at small sizes, once (for the test of the
 * report's shape; not figures to quote). --only 4k runs only the 4K share
 * and map figures of the newest version, --only share-4k only its first
 * shares, split at the importer's NEW_IMPORT, --only round-trip only bare
 * routed round trips with each process's CPU per round trip (for
 * profiling; not runs to record); --trials N sets the share trials and map iterations. Exit code 0 when the run completed
 * without leaks (a missed target is reported, not an error).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { MIN_VERSION } from '../../protocol/index.ts';
import { Run } from '../launcher/run.ts';
import type { VmHandle } from '../launcher/vm-handle.ts';
import { guardSignals } from '../launcher/signals.ts';
import { backendCost, readBackendCost } from './backend-cost.ts';
import { exporterGrantFrames, exporterPages, FULL, QUICK, v1ExporterGrantFrames, v1ExporterPages } from './config.ts';
import { warmUp, type BenchContext, type Pair } from './context.ts';
import { exportsFigure } from './exports-figures.ts';
import { fmtSpread } from './format.ts';
import { handoffFigure, throughputFigure } from './handoff-figures.ts';
import { loadNow, runMeta } from './meta.ts';
import { reportLines } from './report.ts';
import { scaleCurve } from './scale-figures.ts';
import { fanOutFigure, fourKNewest, fourKShareOnly, roundTripOnly, shareFigures } from './share-figures.ts';
import type { BackendCost, BenchReport, BenchResult, ScaleRow } from './types.ts';

async function pairOf(exporter: VmHandle, importer: VmHandle): Promise<Pair> {
  const [a, b] = await Promise.all([exporter, importer].map((vm) => vm.call<{ version: number }>('bench.version')));
  if (a!.version !== b!.version) throw new Error(`${exporter.name} speaks v${a!.version} but ${importer.name} v${b!.version}`);
  return { exporter, importer, version: a!.version };
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { json: { type: 'boolean' }, quick: { type: 'boolean' }, out: { type: 'string' }, 'run-tag': { type: 'string' }, only: { type: 'string' }, trials: { type: 'string' } }, strict: true });
  if (values.only !== undefined && values.out !== undefined) throw new Error('--only runs a subset: not a run to write with --out');
  const json = values.json === true;
  const trials = values.trials === undefined ? undefined : Number(values.trials);
  if (trials !== undefined && !(Number.isInteger(trials) && trials > 0)) throw new Error(`--trials ${values.trials}: a positive integer`);
  const base = values.quick ? QUICK : FULL;
  const config = trials === undefined ? base : { ...base, shareTrials: trials, mapIterations: trials };
  const out = json ? process.stderr : process.stdout;
  const log = (line: string): void => { out.write(`[bench] ${line}\n`); };
  const meta = runMeta();
  const guard = guardSignals(log);
  const t0 = performance.now();
  const run = await Run.start({ log, readyTimeoutMs: 180_000, ...(values['run-tag'] ? { runTag: values['run-tag'] } : {}) });
  let results: BenchResult[] = [];
  let scale: ScaleRow[] = [];
  let versions = { newest: 0, v1: MIN_VERSION };
  let backend: BackendCost = backendCost(undefined, 'the run failed before its end');
  let failure: unknown;
  // Ctrl-C: stop at once (the VMs go, their pending calls fail, the figure in progress ends).
  guard.signal.addEventListener('abort', () => void run.stop(), { once: true });
  try {
    const vms = await run.addDomains([
      { name: 'exporter', memPages: exporterPages(config), maxGrantFrames: exporterGrantFrames(config) },
      { name: 'importer', memPages: 16_384 },
      ...Array.from({ length: config.fanOut - 1 }, (_, i) => ({ name: `fan${i + 2}`, memPages: 4096 })),
      { name: 'exporter-v1', memPages: v1ExporterPages(config), maxGrantFrames: v1ExporterGrantFrames(config), maxVersion: MIN_VERSION },
      { name: 'importer-v1', memPages: 4096, maxVersion: MIN_VERSION },
    ]);
    log(`started: hv pid ${run.hv.pid}, ${vms.map((v) => `${v.name} pid ${v.pid}`).join(', ')}`);
    const newest = await pairOf(vms[0]!, vms[1]!);
    const v1 = await pairOf(vms[vms.length - 2]!, vms[vms.length - 1]!);
    versions = { newest: newest.version, v1: v1.version };
    log(`protocol versions: exporter and importer v${newest.version}, exporter-v1 and importer-v1 v${v1.version}`);
    const ctx: BenchContext = { run, config, exporter: newest.exporter, importer: newest.importer, newest, v1, fans: vms.slice(1, 1 + config.fanOut), log };
    log(`warm-up: ${config.warmupShares} untimed first shares of 1 MiB on each pair`);
    await warmUp(ctx);
    // Exports last: it leaves the most behind in the importer's queue (drained) and tables (freed).
    const subsets: Record<string, typeof fourKNewest> = { '4k': fourKNewest, 'share-4k': fourKShareOnly, 'round-trip': roundTripOnly };
    if (values.only !== undefined && !(values.only in subsets)) throw new Error(`--only ${values.only}: the subsets are ${Object.keys(subsets).join(', ')}`);
    const figures = values.only !== undefined ? [subsets[values.only]!] : [shareFigures, handoffFigure, throughputFigure, fanOutFigure, exportsFigure];
    for (const figure of figures) {
      if (guard.signal.aborted) throw new Error(`interrupted by ${String(guard.signal.reason)}`);
      const got = await figure(ctx);
      for (const r of got) log(`${r.id}: ${r.value} ${r.unit}${r.ratio !== null ? `, ratio ${r.ratio}` : ''}${r.ratioSpread ? ` (trials ${fmtSpread(r.ratioSpread)})` : ''}${r.met !== null ? ` (${r.target}: ${r.met ? 'met' : 'NOT met'})` : ''}`);
      results = [...results, ...got];
      if (figure === throughputFigure) scale = await scaleCurve(ctx);
    }
    backend = await readBackendCost(run.control);
  } catch (e) {
    failure = e;
  } finally {
    guard.dispose();
  }
  const stopped = await run.stop();
  const report: BenchReport = {
    bench: 'hdmabuf', quick: config.quick, ...meta, load: { start: meta.load.start, end: loadNow() },
    versions, results, scale, backend,
    leaks: stopped.leaks, durationMs: Math.round(performance.now() - t0),
  };
  if (failure) process.stderr.write(`[bench] failed: ${(failure as Error).stack ?? String(failure)}\n`);
  const leaked = Object.values(stopped.leaks).some((n) => n !== 0);
  const text = `${JSON.stringify(report, null, 2)}\n`;
  if (values.out !== undefined) {
    if (failure || leaked) log(`not writing ${values.out}: the run ${failure ? 'failed' : 'leaked'}`);
    else writeFileSync(values.out, text);
  }
  await new Promise<void>((resolve) => process.stdout.write(json ? text : `${reportLines(report).join('\n')}\n`, () => resolve()));
  return failure || leaked ? 1 : 0;
}

main().then((code) => process.exit(code), (e: unknown) => {
  process.stderr.write(`[bench] ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
