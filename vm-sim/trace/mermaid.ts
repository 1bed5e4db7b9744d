/**
 * Writes a run's protocol messages as a Mermaid sequence diagram.
 *
 * One arrow per message, from its sender to its receiver: a routed message
 * (hyper_dmabuf, ECHO, the simulator's handoff) is drawn straight from one
 * domain to the other, a hypercall from the domain to hv. Requests and
 * events are solid arrows, replies dotted, error replies end in a cross.
 * Repetitions are collapsed so that a long run stays readable: a block of
 * lines that repeats is shown SHOWN_REPEATS times and then once inside a
 * `loop` with the number of further repetitions (collapse.ts).
 */
import { collapseRepeats, type DiagramLine } from './collapse.ts';
import type { WireRecord } from './records.ts';

/** A participant of the diagram. */
export interface MermaidParticipant {
  /** Mermaid identifier ([A-Za-z][A-Za-z0-9_]*). */
  readonly id: string;
  /** Shown name. */
  readonly label: string;
  /** Process id, and the domain it speaks for (undefined for hv). */
  readonly pid: number;
  readonly domid: number | undefined;
}

/** Most lines in the diagram after collapsing; the rest is summarised in a note. */
export const MAX_LINES = 400;

/** Builds the diagram text. */
export function toMermaid(records: readonly WireRecord[], participants: readonly MermaidParticipant[], title?: string): string {
  const byPid = new Map(participants.map((p) => [p.pid, p]));
  const byDom = new Map(participants.filter((p) => p.domid !== undefined).map((p) => [p.domid!, p]));
  const hv = participants.find((p) => p.domid === undefined);
  const lines: DiagramLine[] = [];
  const sent = records.filter((r) => r.dir === 'out' && r.via === undefined && byPid.has(r.pid)).sort((a, b) => a.ts - b.ts);
  for (const r of sent) {
    const from = byPid.get(r.pid)!;
    const to = from === hv
      ? (r.dom !== undefined ? byDom.get(r.dom) : undefined)
      : (r.dst !== undefined ? byDom.get(r.dst) : hv);
    if (!to) continue;
    const arrow = r.kind === 'res' ? '-->>' : r.kind === 'err' ? '--x' : '->>';
    const label = r.kind === 'err' ? `${r.type} ${r.code ?? 'error'}` : r.kind === 'evt' ? `${r.type} (event)` : r.type;
    lines.push({ text: `${from.id}${arrow}${to.id}: ${label}` });
  }
  const body = collapseRepeats(lines);
  const out: string[] = ['sequenceDiagram'];
  if (title) out.push(`  %% ${sanitize(title)}`);
  for (const p of participants) out.push(`  participant ${p.id} as ${sanitize(p.label)}`);
  if (hv && participants.length > 1) {
    const first = participants[0]!;
    const last = participants[participants.length - 1]!;
    out.push(`  Note over ${first.id},${last.id}: domain-to-domain messages are routed by hv and drawn sender to receiver`);
  }
  const shown = body.slice(0, MAX_LINES);
  for (const line of shown) out.push(`  ${line}`);
  if (body.length > MAX_LINES && hv) out.push(`  Note over ${hv.id}: ${body.length - MAX_LINES} more lines not shown`);
  return `${out.join('\n')}\n`;
}

/** Keeps labels to characters Mermaid reads literally. */
function sanitize(text: string): string {
  return text.replace(/[;#:\n\r]/g, ' ').trim();
}
