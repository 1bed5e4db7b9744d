/**
 * Benchmark results. Each figure is measured against a baseline taken in
 * the same run on the same processes, and reports
 *   { name, value, baseline, ratio, target, met }
 * plus its unit, what the baseline and the ratio are, and the trial count.
 */

/** How a ratio is compared with its target. */
export interface Target {
  /** '>=': ratio at least `value`; '<=': at most; 'within': between 1/value and value. */
  op: '>=' | '<=' | 'within';
  value: number;
  /** Where the target comes from (the issue, or our own choice where it sets none). */
  source: 'issue' | 'own';
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
  trials: number;
  note?: string;
}

/** What `npm run bench -- --json` prints. */
export interface BenchReport {
  bench: 'hdmabuf';
  quick: boolean;
  machine: { cpus: number; node: string; platform: string };
  results: BenchResult[];
  leaks: { busyGrants: number; mappings: number; processes: number; shmFiles: number };
  durationMs: number;
}

/** Builds a result, computing the target text and whether it was met. */
export function result(r: {
  id: string; name: string; value: number; unit: string; trials: number;
  baseline?: number; baselineName?: string; ratio?: number; ratioMeaning?: string; target?: Target; note?: string;
}): BenchResult {
  const ratio = r.ratio === undefined ? null : round(r.ratio);
  const t = r.target;
  let target: string | null = null;
  let met: boolean | null = null;
  if (t && ratio !== null) {
    if (t.op === 'within') {
      target = `1/${t.value} <= ratio <= ${t.value}`;
      met = ratio >= 1 / t.value && ratio <= t.value;
    } else {
      target = `ratio ${t.op} ${t.value}`;
      met = t.op === '>=' ? ratio >= t.value : ratio <= t.value;
    }
  }
  return {
    id: r.id, name: r.name, value: round(r.value), unit: r.unit,
    baseline: r.baseline === undefined ? null : round(r.baseline), baselineName: r.baselineName ?? null,
    ratio, ratioMeaning: r.ratioMeaning ?? null, target, targetSource: t?.source ?? null, met, trials: r.trials,
    ...(r.note ? { note: r.note } : {}),
  };
}

function round(x: number): number {
  if (!Number.isFinite(x)) return x;
  const digits = Math.abs(x) >= 100 ? 1 : Math.abs(x) >= 1 ? 2 : 4;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
