/** The human table of `npm run bench`. */
import type { BenchReport } from './types.ts';

function fmt(x: number | null, unit = ''): string {
  if (x === null) return '-';
  const s = Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2);
  return unit ? `${s} ${unit}` : s;
}

/** Lines of the table and the notes. */
export function reportLines(r: BenchReport): string[] {
  const rows = r.results.map((x) => [
    x.name, fmt(x.value, x.unit), x.baseline === null ? '-' : fmt(x.baseline, x.unit), x.ratio === null ? '-' : `${fmt(x.ratio)}x`,
    x.target ?? 'report', x.met === null ? '-' : x.met ? 'yes' : 'NO',
  ]);
  const head = ['figure', 'value', 'baseline', 'ratio', 'target', 'met'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out = ['', line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line), ''];
  for (const x of r.results) out.push(`  ${x.id}: ${x.baselineName ? `baseline = ${x.baselineName}; ` : ''}${x.ratioMeaning ? `ratio = ${x.ratioMeaning}` : ''}${x.targetSource === 'own' ? ' (our target)' : ''}${x.note ? `; ${x.note}` : ''}`);
  const l = r.leaks;
  out.push('', `${r.quick ? 'quick run (small sizes, one trial: not figures to quote); ' : ''}${r.machine.cpus} CPUs, node ${r.machine.node}, ${(r.durationMs / 1000).toFixed(0)} s; leaks: busy grants ${l.busyGrants}, mappings ${l.mappings}, processes ${l.processes}, shm files ${l.shmFiles}`);
  return out;
}
