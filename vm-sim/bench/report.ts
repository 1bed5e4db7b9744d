/** The human table of `npm run bench`. */
import { backendLine, RESULT_HEAD, resultCells, resultNotes, runLine, scaleCells, scaleHead } from './format.ts';
import type { BenchReport } from './types.ts';

/** Columns padded to their widest cell; the first left-aligned, the others right-aligned. */
function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

/** Lines of the tables and the notes. */
export function reportLines(r: BenchReport): string[] {
  const out = ['', ...table(RESULT_HEAD, r.results.map(resultCells)), ''];
  for (const n of resultNotes(r.results)) out.push(`  ${n}`);
  if (r.scale.length > 0) out.push('', 'Scale curve (high-order chunks):', ...table(scaleHead(r), r.scale.map(scaleCells)));
  out.push('', backendLine(r), runLine(r));
  return out;
}
