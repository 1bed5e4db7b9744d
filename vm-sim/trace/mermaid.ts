/**
 * Writes a run's protocol messages as a Mermaid sequence diagram.
 *
 * One arrow per message, from its sender to its receiver: a routed message
 * (hyper_dmabuf, ECHO, the simulator's handoff) is drawn straight from one
 * domain to the other, a hypercall from the domain to hv. Requests and
 * events are solid arrows, replies dotted, error replies end in a cross.
 * Each arrow carries the message's key fields (buffer, frame, number of
 * refs or handles, fd, sync op: key-fields.ts). Repetitions are folded so
 * that a long run stays readable: a block of lines that repeats (numbers
 * aside) is shown SHOWN_REPEATS times and then once inside a `loop` with the
 * number of further repetitions and the range of each number that varied
 * (collapse.ts). A diagram still longer than `maxLines` loses lines from its
 * middle, never its end: the teardown always shows.
 */
import { elideMiddle, foldRepeats, type DiagramLine } from './collapse.ts';
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

/** Default of MermaidOptions.maxLines: keeps a diagram under the 50,000 characters Mermaid renders by default. */
export const DEFAULT_MAX_LINES = 1000;

/** Options of toMermaid. */
export interface MermaidOptions {
  /** Shown as a comment on the second line. */
  title?: string;
  /** Most body lines after folding (0: no limit); the middle of the run is left out past it (default DEFAULT_MAX_LINES). */
  maxLines?: number;
}

/** One message of the run, from its sender to its receiver. */
export interface MessageArrow {
  /** When it was sent (trace clock, µs). */
  readonly ts: number;
  readonly from: MermaidParticipant;
  readonly to: MermaidParticipant;
  readonly kind: WireRecord['kind'];
  /** "SIM_FRAME_HANDOFF buf 1:2, frame 5". */
  readonly label: string;
}

/** Every message once, as sent, in time order; a routed message goes straight from sender to receiver. */
export function messageArrows(records: readonly WireRecord[], participants: readonly MermaidParticipant[]): MessageArrow[] {
  const byPid = new Map(participants.map((p) => [p.pid, p]));
  const byDom = new Map(participants.filter((p) => p.domid !== undefined).map((p) => [p.domid!, p]));
  const hv = participants.find((p) => p.domid === undefined);
  const out: MessageArrow[] = [];
  const sent = records.filter((r) => r.dir === 'out' && r.via === undefined && byPid.has(r.pid)).sort((a, b) => a.ts - b.ts);
  for (const r of sent) {
    const from = byPid.get(r.pid)!;
    const to = from === hv
      ? (r.dom !== undefined ? byDom.get(r.dom) : undefined)
      : (r.dst !== undefined ? byDom.get(r.dst) : hv);
    if (to) out.push({ ts: r.ts, from, to, kind: r.kind, label: messageLabel(r) });
  }
  return out;
}

/** Builds the diagram text. */
export function toMermaid(records: readonly WireRecord[], participants: readonly MermaidParticipant[], options: MermaidOptions = {}): string {
  const hv = participants.find((p) => p.domid === undefined);
  const lines: DiagramLine[] = messageArrows(records, participants).map((m) => ({
    prefix: `${m.from.id}${m.kind === 'res' ? '-->>' : m.kind === 'err' ? '--x' : '->>'}${m.to.id}: `,
    label: sanitize(m.label),
    startsBlock: m.kind === 'req' || m.kind === 'evt',
  }));
  const { head, tail, omitted } = elideMiddle(foldRepeats(lines), options.maxLines ?? DEFAULT_MAX_LINES);
  const out: string[] = ['sequenceDiagram'];
  if (options.title) out.push(`  %% ${sanitize(options.title)}`);
  for (const p of participants) out.push(`  participant ${p.id} as ${sanitize(p.label)}`);
  const first = participants[0];
  const last = participants[participants.length - 1];
  const across = first && last ? (first === last ? first.id : `${first.id},${last.id}`) : undefined;
  if (hv && across && participants.length > 1) out.push(`  Note over ${across}: domain-to-domain messages are routed by hv and drawn sender to receiver`);
  for (const item of head) for (const line of item.lines) out.push(`  ${line}`);
  if (omitted > 0 && across) out.push(`  Note over ${across}: ${omitted} lines of the middle of the run not shown (a diagram has at most ${options.maxLines ?? DEFAULT_MAX_LINES} lines, see --mermaid-max-lines)`);
  for (const item of tail) for (const line of item.lines) out.push(`  ${line}`);
  return `${out.join('\n')}\n`;
}

/** "DMABUF_EXPORT buf 1:3, pages 2025", "SIM_FRAME_HANDOFF ok", "GNTTAB_MAP_GRANT_REF ERR_LIMIT", "DOMAIN_UP (event) dom 2". */
function messageLabel(r: WireRecord): string {
  const info = r.info ? ` ${r.info}` : '';
  if (r.kind === 'err') return `${r.type} ${r.code ?? 'error'}${info}`;
  if (r.kind === 'evt') return `${r.type} (event)${info}`;
  return `${r.type}${info}`;
}

/** Keeps labels to characters Mermaid reads literally (";" ends a statement, "#" starts an entity). */
function sanitize(text: string): string {
  return text.replace(/[;#\n\r]/g, ' ').trim();
}
