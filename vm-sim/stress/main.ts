/**
 * `npm run stress`: the backend under hostile load (issue 9; SPEC.md 3.7).
 *
 *   tsx vm-sim/stress/main.ts [--quick] [--class NAME]... [--seed N] [--class-ms MS] [--no-corpus] [--help]
 *
 * Starts a backend process on loopback, boots two legitimate domains in a
 * process of their own (vm-sim/stress/legit-main.ts: grant, map, check,
 * unmap, end access, ping, in a loop), measures their cycle latency idle,
 * then runs each hostile class (vm-sim/stress/classes.ts) from other
 * connections and prints, per class: inputs, backend crashes, legitimate
 * failures, legitimate p50/p99 against the idle baseline of the same run,
 * the backend's RSS before/peak/after, and answers that disagree with
 * SPEC.md. Every single-frame input that was mis-answered or stalled is
 * added to the regression corpus (test/stress/corpus/), which `npm test`
 * replays. Bounded: each class runs at most --class-ms (default 8 s, 2 s
 * with --quick) and a bounded number of inputs; everything it started is
 * stopped and every file of the run removed at the end. Exit status 1 if
 * anything disagreed, crashed or failed.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { HvClient } from '../../src/transport/hv-client.ts';
import { DOMAIN_CREATE, DOMAIN_DESTROY, HV_STATS_V2 } from '../../protocol/messages/control.ts';
import { ManagedChild } from '../process/spawn/child.ts';
import { spawnHv, type HvProcess } from '../process/spawn/spawn-hv.ts';
import { CLASSES, type ClassContext, type Finding } from './classes.ts';
import { saveEntry } from './corpus.ts';
import { RawClient } from './raw-client.ts';
import { prng as rng } from '../prng.ts';
import { resetPeakRss, rssBytes } from '../process/spawn/proc-memory.ts';

const SEND_BUDGET = 16 * 1024 * 1024;
const HELLO_TIMEOUT_MS = 2000;

interface Row {
  name: string;
  inputs: number;
  crashes: number;
  legitFailures: number;
  p50: number;
  p99: number;
  samples: number;
  rss: { before: number; peak: number; after: number };
  /** CPU time (user + system) the backend process spent during the phase, per second of the phase: load-independent where latency is not. */
  hvCpuMsPerS: number;
  disagreements: number;
  findings: Finding[];
  legitErrors: string[];
}

function options() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      class: { type: 'string', multiple: true },
      seed: { type: 'string' },
      'class-ms': { type: 'string' },
      'no-corpus': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(usage());
    process.exit(0);
  }
  const classMs = values['class-ms'] !== undefined ? Number(values['class-ms']) : values.quick ? 2000 : 8000;
  if (!Number.isInteger(classMs) || classMs < 100) throw new RangeError('--class-ms must be an integer >= 100');
  const names = values.class ?? CLASSES.map((c) => c.name);
  for (const n of names) if (!CLASSES.some((c) => c.name === n)) throw new RangeError(`unknown class ${n}; classes: ${CLASSES.map((c) => c.name).join(', ')}`);
  return { classMs, names, seed: Number(values.seed ?? Date.now() % 1e9), corpus: !values['no-corpus'], maxInputs: values.quick ? 2000 : 20_000 };
}

/** The --help text: the options and every class with what it throws. */
function usage(): string {
  const classes = CLASSES.map((c) => `  ${c.name.padEnd(18)} ${c.doc}`).join('\n');
  return `npm run stress -- [options]: the backend under hostile load (SPEC.md 3.7); loopback only, bounded in count and time.

Options:
  --quick            2 s per class and at most 2,000 inputs (default: 8 s and 20,000)
  --class NAME       run only this class (repeatable)
  --class-ms MS      time per class in milliseconds (>= 100)
  --seed N           seed of the random inputs (default: from the clock; printed, to replay a run)
  --no-corpus        do not add mis-answered or stalling inputs to test/stress/corpus/
  -h, --help         this text

Classes:
${classes}

Exit status 1 if the backend crashed, a legitimate operation failed, or an answer disagreed with SPEC.md.
`;
}

/** User + system CPU time of a process so far, in ms (/proc/<pid>/stat fields 14 and 15, in clock ticks of 10 ms). */
function cpuMsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

/** The backend's RSS (now, or its high-water mark), or 0 where /proc cannot tell (the report says 0 MiB). */
function rssOf(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  try {
    return rssBytes(pid, field);
  } catch {
    return 0;
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const opts = options();
  const random = rng(opts.seed);
  process.stdout.write(`stress: seed ${opts.seed}, ${opts.classMs} ms per class, classes: ${opts.names.join(', ')}\n`);
  const hv: HvProcess = await spawnHv({ args: ['--hello-timeout-ms', String(HELLO_TIMEOUT_MS), '--send-budget', String(SEND_BUDGET)], readyTimeoutMs: 30_000 });
  let crashes = 0;
  void hv.child.exited.then((exit) => { if (exit.code !== 0 || exit.signal) crashes++; });
  const control = await HvClient.connect({ url: hv.url, domid: 0, token: hv.controlToken, name: 'stress-control' });
  const created = new Set<number>();
  const create = async (name: string, memPages: number) => {
    const d = await control.call(DOMAIN_CREATE, { name, memPages });
    created.add(d.domid);
    return d;
  };
  const a = await create('legit-a', 1024);
  const b = await create('legit-b', 1024);
  const boot = (d: typeof a, name: string) => JSON.stringify({ url: hv.url, domid: d.domid, token: d.token, ramPath: d.ramPath, grantTablePath: d.grantTablePath, memPages: 1024, maxGrantFrames: d.maxGrantFrames, name });
  const legit = await ManagedChild.start<{ type: string }>({ name: 'legit', script: new URL('./legit-main.ts', import.meta.url).pathname, args: [boot(a, 'legit-a'), boot(b, 'legit-b')], isReady: (m) => m.type === 'ready' });
  const report = () => new Promise<{ samples: number[]; failures: number; errors: string[] }>((resolve) => {
    const on = (m: Record<string, unknown>) => { if (m.type === 'report') { legit.off('message', on); resolve(m as never); } };
    legit.on('message', on);
    legit.send({ type: 'report' });
  });

  const rows: Row[] = [];
  const runPhase = async (name: string, body: (ctx: ClassContext) => Promise<void>): Promise<Row> => {
    const row: Row = { name, inputs: 0, crashes: 0, legitFailures: 0, p50: NaN, p99: NaN, samples: 0, rss: { before: rssOf(hv.pid), peak: 0, after: 0 }, hvCpuMsPerS: NaN, disagreements: 0, findings: [], legitErrors: [] };
    // The peak is the kernel's high-water mark, not a sample: exact however short the peak was.
    resetPeakRss(hv.pid);
    row.rss.peak = row.rss.before;
    /** The high-water mark since the last reset, kept in the phase's peak. */
    const foldPeak = (): number => {
      const hwm = rssOf(hv.pid, 'VmHWM');
      row.rss.peak = Math.max(row.rss.peak, hwm);
      return hwm;
    };
    const crashesBefore = crashes;
    const started = Date.now();
    const cpuBefore = cpuMsOf(hv.pid);
    const hostiles = new Set<number>();
    legit.send({ type: 'phase', name });
    const ctx: ClassContext = {
      url: hv.url,
      legit: [a.domid, b.domid],
      sendBudget: SEND_BUDGET,
      helloTimeoutMs: HELLO_TIMEOUT_MS,
      rng: random,
      more: () => Date.now() - started < opts.classMs && row.inputs < opts.maxInputs && crashes === crashesBefore,
      input: () => { row.inputs++; },
      find: (f) => { row.disagreements++; if (row.findings.length < 50) row.findings.push(f); },
      rssNow: () => rssOf(hv.pid),
      startPeak: () => { foldPeak(); resetPeakRss(hv.pid); },
      peakSinceStart: foldPeak,
      async hostile(version = 1) {
        const d = await create(`hostile-${name}`.slice(0, 60), 16);
        hostiles.add(d.domid);
        return { domid: d.domid, client: await RawClient.connect(hv.url, d.domid, d.token, version) };
      },
      async cleanup() {
        // A hostile domain whose connection closed is already gone (ERR_NO_SUCH_DOMAIN); what is left is counted in the leftovers check.
        for (const domid of hostiles) await control.call(DOMAIN_DESTROY, { domid }).catch(() => undefined);
      },
    };
    try {
      await body(ctx);
    } catch (e) {
      ctx.find({ what: `the class itself failed: ${(e as Error)?.stack ?? String(e)}` });
    }
    await ctx.cleanup();
    const legitReport = await report();
    row.hvCpuMsPerS = (cpuMsOf(hv.pid) - cpuBefore) / ((Date.now() - started) / 1000);
    foldPeak();
    const sorted = [...legitReport.samples].sort((x, y) => x - y);
    row.samples = sorted.length;
    row.p50 = percentile(sorted, 50);
    row.p99 = percentile(sorted, 99);
    row.legitFailures = legitReport.failures;
    row.legitErrors = legitReport.errors;
    row.crashes = crashes - crashesBefore;
    await sleep(500);
    row.rss.after = rssOf(hv.pid);
    rows.push(row);
    process.stdout.write(`  ${name}: ${row.inputs} inputs, ${row.disagreements} disagreements, legit p99 ${row.p99.toFixed(2)} ms\n`);
    return row;
  };

  const baseline = await runPhase('idle baseline', async (ctx) => { while (ctx.more()) await sleep(50); });
  for (const name of opts.names) {
    if (crashes > 0) break;
    const cls = CLASSES.find((c) => c.name === name)!;
    await runPhase(name, (ctx) => cls.run(ctx));
  }

  // Nothing of the hostile classes may remain: only the two legitimate domains, no routed requests pending.
  const stats = await control.call(HV_STATS_V2, {});
  const leftovers = stats.domains.filter((d) => d.domid !== a.domid && d.domid !== b.domid);
  legit.send({ type: 'stop' });
  await legit.exited;
  // The legitimate domains' connections closed with their process just above, which usually removed them
  // (ERR_NO_SUCH_DOMAIN then); this sweeps one that remains.
  for (const domid of [a.domid, b.domid]) await control.call(DOMAIN_DESTROY, { domid }).catch(() => undefined);
  await control.close();
  const exit = await hv.child.reap(15_000);

  const mib = (x: number) => (x / 2 ** 20).toFixed(0);
  const header = ['class', 'inputs', 'crashes', 'legit fail', 'legit p50 ms', 'legit p99 ms', 'p99/idle', 'RSS MiB before/peak/after', 'hv CPU ms/s', 'disagree'];
  const lines = rows.map((r) => [
    r.name, String(r.inputs), String(r.crashes), String(r.legitFailures), r.p50.toFixed(2), r.p99.toFixed(2),
    r === baseline ? '1.0x' : `${(r.p99 / baseline.p99).toFixed(1)}x`, `${mib(r.rss.before)}/${mib(r.rss.peak)}/${mib(r.rss.after)}`, r.hvCpuMsPerS.toFixed(0), String(r.disagreements),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  process.stdout.write(`\n${fmt(header)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n${lines.map(fmt).join('\n')}\n\n`);
  process.stdout.write(`legit samples per phase: ${rows.map((r) => `${r.name} ${r.samples}`).join(', ')}\n`);
  process.stdout.write(`backend exit: code ${exit.code}${exit.signal ? ` signal ${exit.signal}` : ''}; hostile domains left at the end: ${leftovers.length}; routed pending: ${stats.routedPending}; internal errors: ${stats.internalErrors}\n`);

  let saved = 0;
  for (const r of rows) {
    for (const f of r.findings.slice(0, 5)) process.stdout.write(`  [${r.name}] ${f.what.slice(0, 300)}\n`);
    for (const e of r.legitErrors) process.stdout.write(`  [${r.name}] legit: ${e}\n`);
    if (!opts.corpus) continue;
    for (const f of r.findings) {
      if (!f.frame || !f.expected || !f.state || f.frame.byteLength > 256 * 1024) continue;
      saveEntry({ class: r.name, state: f.state, ...(f.version !== undefined && f.version !== 1 ? { version: f.version } : {}), frameHex: Buffer.from(f.frame).toString('hex'), expected: f.expected, note: `found by npm run stress (seed ${opts.seed}): ${f.what.slice(0, 500)}` });
      saved++;
    }
  }
  if (saved) process.stdout.write(`${saved} inputs added to test/stress/corpus/\n`);
  const bad = rows.some((r) => r.crashes || r.legitFailures || r.disagreements) || leftovers.length > 0 || exit.code !== 0;
  process.exit(bad ? 1 : 0);
}

main().catch((e: unknown) => {
  process.stderr.write(`stress: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(2);
});
