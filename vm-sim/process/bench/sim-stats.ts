/** Order statistics of timing samples (VM side and launcher side). */

/** Summary of samples in microseconds. */
export interface SampleSummary {
  n: number;
  min: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

/** The q-quantile (0..1) of samples, nearest rank; NaN for none. */
export function quantile(samples: ArrayLike<number>, q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

/** The median. */
export function median(samples: ArrayLike<number>): number {
  return quantile(samples, 0.5);
}

/** n, min, p50, p99, max, mean (rounded to 0.1). */
export function summarize(samples: ArrayLike<number>): SampleSummary {
  const r = (x: number): number => Math.round(x * 10) / 10;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < samples.length; i++) {
    const x = samples[i]!;
    sum += x;
    if (x < min) min = x;
    if (x > max) max = x;
  }
  const n = samples.length;
  return n === 0
    ? { n: 0, min: 0, p50: 0, p99: 0, max: 0, mean: 0 }
    : { n, min: r(min), p50: r(quantile(samples, 0.5)), p99: r(quantile(samples, 0.99)), max: r(max), mean: r(sum / n) };
}
