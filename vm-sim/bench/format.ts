/**
 * How figures are written, the same in the terminal table (report.ts) and
 * in the README's generated block (readme.ts): numbers to the precision the
 * machine's noise leaves meaningful, ratios with an "x", the run's machine,
 * load and date in one sentence.
 */
import type { BenchReport, BenchResult, ScaleRow } from './types.ts';

const MiB = 1024 * 1024;

/** A number to at most 3 significant digits (whole numbers from 100 on), with its unit. */
export function fmt(x: number | null, unit = ''): string {
  if (x === null) return '-';
  const s = Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : Math.abs(x) >= 0.1 ? x.toFixed(2) : x.toFixed(3);
  return unit ? `${s} ${unit}` : s;
}

/** A ratio: "2.31x". */
export function fmtRatio(x: number | null): string {
  return x === null ? '-' : `${fmt(x)}x`;
}

/** A buffer size: "33 MiB", "1 GiB". */
export function fmtBytes(bytes: number): string {
  if (bytes >= 1024 * MiB && bytes % (1024 * MiB) === 0) return `${bytes / (1024 * MiB)} GiB`;
  return bytes % MiB === 0 ? `${bytes / MiB} MiB` : `${fmt(bytes / MiB)} MiB`;
}

/** The middle half of a figure's per-trial ratios, "1.52x to 2.31x"; "-" when its baseline is not paired with its trials. */
export function fmtSpread(spread: readonly [number, number] | null): string {
  return spread === null ? '-' : `${fmtRatio(spread[0])} to ${fmtRatio(spread[1])}`;
}

/** The cells of one figure: name, value, baseline, ratio, the per-trial ratios' middle half, target, met. */
export function resultCells(x: BenchResult): string[] {
  return [
    x.name, fmt(x.value, x.unit), x.baseline === null ? '-' : fmt(x.baseline, x.unit), fmtRatio(x.ratio), fmtSpread(x.ratioSpread),
    x.target === null ? 'report' : `${x.target}${x.targetSource === 'own' ? ' (ours)' : ''}`, x.met === null ? '-' : x.met ? 'met' : 'NOT met',
  ];
}

/** Header of the figures table. */
export const RESULT_HEAD = ['figure', 'value', 'baseline', 'ratio', 'trials\' ratios, middle half', 'target', 'met'];

/** What each figure's baseline and ratio are, one line per figure that has any of them. */
export function resultNotes(results: readonly BenchResult[]): string[] {
  return results.flatMap((x) => {
    const parts = [x.baselineName ? `baseline = ${x.baselineName}` : '', x.ratioMeaning ? `ratio = ${x.ratioMeaning}` : '', x.note ?? ''].filter((p) => p !== '');
    return parts.length === 0 ? [] : [`${x.id} (v${x.version}): ${parts.join('; ')}`];
  });
}

/** Header of the scale-curve table. */
export function scaleHead(r: BenchReport): string[] {
  return ['buffer', 'pages', 'runs', `first share (v${r.versions.newest} pair)`, `first share (v${r.versions.v1}-only pair)`, 'one memcpy', 'memcpy / share', `handoff (v${r.versions.newest} pair)`];
}

/** The cells of one size of the scale curve. */
export function scaleCells(s: ScaleRow): string[] {
  return [fmtBytes(s.bytes), String(s.pages), String(s.runs), fmt(s.shareMs, 'ms'), fmt(s.shareV1Ms, 'ms'), fmt(s.memcpyMs, 'ms'), fmtRatio(s.memcpyMs / s.shareMs), fmt(s.handoffUs, 'µs')];
}

/** Whether the machine was busy when the run started: a 1-minute load average above half the cores. */
export function wasLoaded(r: BenchReport): boolean {
  return (r.load.start[0] ?? 0) > r.machine.cpus / 2;
}

/** One sentence: when, where, on what and how loaded the run was. */
export function runLine(r: BenchReport): string {
  const l = (xs: number[]): string => xs.map((x) => x.toFixed(2)).join(' ');
  const leaks = r.leaks;
  const clean = Object.values(leaks).every((n) => n === 0);
  return `${r.quick ? 'Quick run (small sizes, one trial: not figures to quote). ' : ''}Recorded ${r.date} at commit ${r.commit.sha.slice(0, 12)}${r.commit.dirty ? ' (with uncommitted changes)' : ''}`
    + ` on ${r.machine.cpus} x ${r.machine.cpuModel}, ${r.machine.memGiB} GiB, Linux ${r.machine.kernel}, Node ${r.machine.node};`
    + ` load average ${l(r.load.start)} at the start and ${l(r.load.end)} at the end${wasLoaded(r) ? ' (a loaded machine: provisional figures)' : ''};`
    + ` protocol v${r.versions.newest} against v${r.versions.v1}; the run took ${(r.durationMs / 1000).toFixed(0)} s`
    + ` and ${clean ? 'leaked nothing' : `LEAKED (busy grants ${leaks.busyGrants}, mappings ${leaks.mappings}, processes ${leaks.processes}, shm files ${leaks.shmFiles})`}.`;
}

/** The backend's per-entry cost in one sentence. */
export function backendLine(r: BenchReport): string {
  const b = r.backend;
  if (b.mapNsPerEntry === null && b.unmapNsPerEntry === null) return `Backend cost per grant entry: ${b.source}.`;
  return `Backend cost per grant entry: map ${fmt(b.mapNsPerEntry, 'ns')}, unmap ${fmt(b.unmapNsPerEntry, 'ns')} (${b.source}).`;
}
