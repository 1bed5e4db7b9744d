/**
 * Benchmark results. Each figure is measured against a baseline taken in
 * the same run on the same processes, and reports
 *   { name, value, baseline, ratio, target, met }
 * plus its unit, what the baseline and the ratio are, the protocol version
 * of the path measured, and every trial's samples.
 */
import { quantile } from '../process/bench/sim-stats.ts';

/** How a ratio is compared with its target. */
export interface Target {
  /** '>=': ratio at least `value`; '<=': at most; 'within': between 1/value and value. */
  op: '>=' | '<=' | 'within';
  value: number;
  /** Where the target comes from (the issue, or our own choice where it sets none). */
  source: 'issue' | 'own';
}

/** Every trial's samples of a figure and of its baseline, in the figure's unit. */
export interface Samples {
  value: number[];
  baseline: number[];
  /**
   * Other series of the same run, each trial: the parts of a composite baseline (the import floor: a round
   * trip plus a direct map), or a measurement the note reports beside the baseline (the direct map in a warm loop).
   */
  parts?: Record<string, number[]>;
}

/** One figure. */
export interface BenchResult {
  /** Stable identifier (the JSON shape test and the README refer to it). */
  id: string;
  name: string;
  /** The measured figure (median over trials), in `unit`. */
  value: number;
  unit: string;
  /** The baseline's figure (median over trials), in `unit`; null when there is none. */
  baseline: number | null;
  baselineName: string | null;
  /** The figure compared with the baseline, as `ratioMeaning` says; null when there is no baseline. */
  ratio: number | null;
  ratioMeaning: string | null;
  /** "ratio >= 20", "ratio <= 1.5", "1/1.2 <= ratio <= 1.2"; null when the figure is reported only. */
  target: string | null;
  targetSource: 'issue' | 'own' | null;
  /** Whether the ratio met its target; null when there is no target. */
  met: boolean | null;
  /**
   * The middle half of the per-trial ratios (25th and 75th percentiles), when each trial of the figure has
   * its own baseline trial, taken in the same round (interleaved, alternated, or timed right after it):
   * how far the machine's noise moves the ratio within the run. Null when the baseline is not paired.
   */
  ratioSpread: [number, number] | null;
  trials: number;
  /** Protocol version of the sessions the figure was measured on. */
  version: number;
  samples: Samples;
  note?: string;
}

/** One size of the scale curve (high-order chunks). */
export interface ScaleRow {
  bytes: number;
  pages: number;
  /** Runs of contiguous pages of the buffer. */
  runs: number;
  /** First share (export, import, map) on the newest version: median ms, and every trial. */
  shareMs: number;
  shareSamples: number[];
  /** The same on protocol v1. */
  shareV1Ms: number;
  shareV1Samples: number[];
  /** One warm memcpy of the same bytes in one process: median ms, and every trial. */
  memcpyMs: number;
  memcpySamples: number[];
  /** Steady handoff round trip of the shared buffer: median µs, and every round trip. */
  handoffUs: number;
  handoffSamples: number[];
}

/** The backend's own cost per grant entry mapped and unmapped, from HV_STATS (absent when the backend does not count it). */
export interface BackendCost {
  mapNsPerEntry: number | null;
  unmapNsPerEntry: number | null;
  /** Where the figures come from, or why they are missing. */
  source: string;
}

/** The machine and the moment of a run. */
export interface RunMeta {
  /** The commit measured, and whether the worktree had uncommitted changes. */
  commit: { sha: string; dirty: boolean };
  /** ISO 8601, when the run started. */
  date: string;
  /** os.loadavg() (1, 5, 15 minutes) when the run started and when it ended. */
  load: { start: number[]; end: number[] };
  machine: { cpus: number; cpuModel: string; memGiB: number; node: string; platform: string; kernel: string };
}

/** Protocol versions of the two pairs of VMs: the newest both sides speak, and v1. */
export interface Versions {
  newest: number;
  v1: number;
}

/** What `npm run bench -- --json` prints (and --out writes). */
export interface BenchReport extends RunMeta {
  bench: 'hdmabuf';
  quick: boolean;
  versions: Versions;
  results: BenchResult[];
  scale: ScaleRow[];
  backend: BackendCost;
  leaks: { busyGrants: number; mappings: number; processes: number; shmFiles: number };
  durationMs: number;
}

/** The target's text and whether `ratio` meets it. */
export function judge(ratio: number, t: Target): { target: string; met: boolean } {
  if (t.op === 'within') return { target: `1/${t.value} <= ratio <= ${t.value}`, met: ratio >= 1 / t.value && ratio <= t.value };
  return { target: `ratio ${t.op} ${t.value}`, met: t.op === '>=' ? ratio >= t.value : ratio <= t.value };
}

/** Which way a figure's ratio divides its value and its baseline. */
export type RatioOrder = 'value/baseline' | 'baseline/value';

/**
 * The 25th and 75th percentiles of the ratios of value[i] and baseline[i], trial by trial: for a figure whose
 * every trial has its own baseline trial, taken in the same round.
 */
export function pairedSpread(value: ArrayLike<number>, baseline: ArrayLike<number>, order: RatioOrder): [number, number] {
  if (value.length !== baseline.length || value.length === 0) {
    throw new Error(`paired samples need as many baseline trials as trials: ${value.length} and ${baseline.length}`);
  }
  const ratios = Array.from(value, (v, i) => (order === 'value/baseline' ? v / baseline[i]! : baseline[i]! / v));
  return [round(quantile(ratios, 0.25)), round(quantile(ratios, 0.75))];
}

/** Builds a result, computing the target text and whether it was met. */
export function result(r: {
  id: string; name: string; value: number; unit: string; trials: number; version: number;
  baseline?: number; baselineName?: string; ratio?: number; ratioMeaning?: string; target?: Target; note?: string;
  samples?: { value: ArrayLike<number>; baseline?: ArrayLike<number>; parts?: Record<string, ArrayLike<number>> };
  /** pairedSpread of the trials, when each trial has its own baseline trial. */
  ratioSpread?: [number, number];
}): BenchResult {
  const ratio = r.ratio === undefined ? null : round(r.ratio);
  const judged = r.target && ratio !== null ? judge(ratio, r.target) : null;
  return {
    id: r.id, name: r.name, value: round(r.value), unit: r.unit,
    baseline: r.baseline === undefined ? null : round(r.baseline), baselineName: r.baselineName ?? null,
    ratio, ratioMeaning: r.ratioMeaning ?? null, target: judged?.target ?? null, targetSource: judged ? r.target!.source : null,
    met: judged?.met ?? null, ratioSpread: r.ratioSpread ?? null, trials: r.trials, version: r.version,
    samples: {
      value: roundAll(r.samples?.value ?? [r.value]),
      baseline: roundAll(r.samples?.baseline ?? (r.baseline === undefined ? [] : [r.baseline])),
      ...(r.samples?.parts ? { parts: Object.fromEntries(Object.entries(r.samples.parts).map(([k, v]) => [k, roundAll(v)])) } : {}),
    },
    ...(r.note ? { note: r.note } : {}),
  };
}

/** Rounds a figure to what the machine's noise leaves meaningful: 4 significant digits at most. */
export function round(x: number): number {
  if (!Number.isFinite(x)) return x;
  const digits = Math.abs(x) >= 100 ? 1 : Math.abs(x) >= 1 ? 2 : 4;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Every sample, rounded like a figure. */
export function roundAll(xs: ArrayLike<number>): number[] {
  return Array.from(xs, round);
}
