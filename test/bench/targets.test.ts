/**
 * The pure parts of the benchmark's figures: medians, targets and whether
 * a ratio meets them, rounding, and how figures are written.
 */
import { describe, expect, it } from 'vitest';
import { backendCost, grantWorkPerMap } from '../../vm-sim/bench/backend-cost.ts';
import { fmt, fmtBytes, fmtRatio, fmtSpread } from '../../vm-sim/bench/format.ts';
import { judge, pairedSpread, result, round } from '../../vm-sim/bench/types.ts';
import { median, quantile } from '../../vm-sim/process/bench/sim-stats.ts';

describe('bench statistics', () => {
  it('median and quantiles by nearest rank, whatever the order', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2);
    expect(quantile([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 0.99)).toBe(100);
    expect(Number.isNaN(median([]))).toBe(true);
  });
});

describe('targets', () => {
  it('>=, <= and within, at and beyond their bounds', () => {
    expect(judge(2, { op: '>=', value: 2, source: 'issue' })).toEqual({ target: 'ratio >= 2', met: true });
    expect(judge(1.99, { op: '>=', value: 2, source: 'issue' }).met).toBe(false);
    expect(judge(1.2, { op: '<=', value: 1.2, source: 'issue' })).toEqual({ target: 'ratio <= 1.2', met: true });
    expect(judge(1.21, { op: '<=', value: 1.2, source: 'issue' }).met).toBe(false);
    expect(judge(0.84, { op: 'within', value: 1.2, source: 'issue' })).toEqual({ target: '1/1.2 <= ratio <= 1.2', met: true });
    expect(judge(0.83, { op: 'within', value: 1.2, source: 'issue' }).met).toBe(false);
    expect(judge(1.3, { op: 'within', value: 1.2, source: 'issue' }).met).toBe(false);
  });

  it('a result judges its rounded ratio, keeps its samples and has no target when none is set', () => {
    const r = result({
      id: 'x', name: 'x', value: 12.345678, unit: 'ms', trials: 3, version: 1, baseline: 4.001, baselineName: 'b',
      ratio: 4.001 / 12.345678, ratioMeaning: 'copy / share', target: { op: '>=', value: 2, source: 'issue' },
      samples: { value: [12.3456, 12.4, 12.2], baseline: [4.00123, 0.0123456] },
    });
    expect(r).toMatchObject({ value: 12.35, baseline: 4, ratio: 0.3241, target: 'ratio >= 2', targetSource: 'issue', met: false, version: 1 });
    expect(r.samples).toEqual({ value: [12.35, 12.4, 12.2], baseline: [4, 0.0123] });
    const plain = result({ id: 'y', name: 'y', value: 3, unit: 'ms', trials: 1, version: 2 });
    expect(plain).toMatchObject({ baseline: null, ratio: null, target: null, targetSource: null, met: null });
    expect(plain.samples).toEqual({ value: [3], baseline: [] });
  });

  it('the spread of a paired figure: quartiles of the trial-by-trial ratios, either way round', () => {
    // Trial i of the value against trial i of the baseline, not medians against medians.
    const share = [1, 2, 4, 8];
    const memcpy = [4, 4, 4, 4];
    // Ratios 4, 2, 1, 0.5 (and their inverses); quartiles by nearest rank.
    expect(pairedSpread(share, memcpy, 'baseline/value')).toEqual([0.5, 2]);
    expect(pairedSpread(share, memcpy, 'value/baseline')).toEqual([0.25, 1]);
    expect(pairedSpread([2, 2, 2, 2], [1, 8, 1, 8], 'baseline/value')).toEqual([0.5, 4]);
    expect(() => pairedSpread([1, 2], [1], 'value/baseline')).toThrow(/as many baseline trials/);
    expect(() => pairedSpread([], [], 'value/baseline')).toThrow(/as many baseline trials/);
    const r = result({ id: 'p', name: 'p', value: 3, unit: 'ms', trials: 4, version: 2, baseline: 4, ratio: 4 / 3, ratioSpread: pairedSpread(share, memcpy, 'baseline/value') });
    expect(r.ratioSpread).toEqual([0.5, 2]);
    expect(result({ id: 'q', name: 'q', value: 3, unit: 'ms', trials: 1, version: 2 }).ratioSpread).toBeNull();
  });

  it('rounds to what the noise leaves meaningful', () => {
    expect(round(1234.5678)).toBe(1234.6);
    expect(round(12.3456)).toBe(12.35);
    expect(round(0.0123456)).toBe(0.0123);
  });
});

describe('formatting', () => {
  it('numbers, ratios and sizes', () => {
    expect(fmt(1234.5, 'µs')).toBe('1235 µs');
    expect(fmt(12.34, 'ms')).toBe('12.3 ms');
    expect(fmt(1.234)).toBe('1.23');
    expect(fmt(0.0521, 'ms')).toBe('0.052 ms');
    expect(fmt(null)).toBe('-');
    expect(fmtRatio(2.5)).toBe('2.50x');
    expect(fmtSpread([1.5, 2.25])).toBe('1.50x to 2.25x');
    expect(fmtSpread(null)).toBe('-');
    expect(fmtBytes(33 * 2 ** 20)).toBe('33 MiB');
    expect(fmtBytes(2 ** 30)).toBe('1 GiB');
    expect(fmtBytes(3840 * 2160 * 4)).toBe('31.6 MiB');
  });
});

describe('backend cost per entry', () => {
  it('divides the backend\'s counters, or says why there is no figure', () => {
    const stats = { mapEntries: 1000, mapNs: 123_456, unmapEntries: 500, unmapNs: 20_000, dirPages: 4, dirNs: 4000, batches: 3, slices: 3 };
    expect(backendCost(stats)).toMatchObject({ mapNsPerEntry: 123.5, unmapNsPerEntry: 40, source: expect.stringMatching(/4 directory pages at 1000 ns/) });
    expect(backendCost({ ...stats, mapEntries: 0, unmapEntries: 0 })).toMatchObject({ mapNsPerEntry: null, unmapNsPerEntry: null });
    expect(backendCost(undefined, 'the control session speaks v1')).toMatchObject({ mapNsPerEntry: null, source: 'not measured: the control session speaks v1' });
  });

  it('the work of each map between two readings: map loops and directory reads, unmaps left out', () => {
    const before = { mapEntries: 1000, mapNs: 50_000, unmapEntries: 500, unmapNs: 20_000, dirPages: 4, dirNs: 4000, batches: 3, slices: 3 };
    const after = { mapEntries: 1000 + 2 * 8100, mapNs: 50_000 + 2 * 200_000, unmapEntries: 500 + 2 * 8100, unmapNs: 999_999, dirPages: 4 + 2 * 9, dirNs: 4000 + 2 * 30_000, batches: 7, slices: 7 };
    expect(grantWorkPerMap(before, after, 2)).toEqual({ us: 230, entries: 8100, dirPages: 9 });
  });
});
