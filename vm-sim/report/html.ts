/**
 * The run report: one self-contained HTML file (inline CSS and SVG, no
 * script, no external resource) that opens in any browser from disk. It
 * shows the summary and every check, the leak figures, the counters each
 * process sampled over time as charts, the first and last messages of the
 * run, and the page layout of every shared buffer (runs of adjacent pages,
 * directory pages).
 */
import type { RunResult } from '../launcher/result.ts';
import { messageArrows, type MermaidParticipant, type MessageArrow } from '../trace/mermaid.ts';
import type { CounterRecord, LayoutRecord, TraceRecord, WireRecord } from '../trace/records.ts';
import { compact, esc, lineChart, type Series } from './svg-chart.ts';

/** Messages shown at the start and at the end of the run. */
export const SEQUENCE_ROWS = 40;
/** Runs of pages listed per buffer (all are drawn). */
const LISTED_RUNS = 12;

/** What the report is made of. */
export interface ReportInput {
  readonly result: RunResult;
  /** The summary lines the CLI prints. */
  readonly summary: readonly string[];
  readonly records: readonly TraceRecord[];
  /** The processes, in display order (hv has no domid). */
  readonly participants: readonly MermaidParticipant[];
  /** The run's start on the trace clock (µs). */
  readonly startUs: number;
}

/** A chart of one process: its title and the tracks it draws. */
interface ChartSpec {
  readonly title: string;
  readonly tracks: string[];
}

/** The report's HTML text. */
export function renderReport(input: ReportInput): string {
  const { result } = input;
  const title = `${result.scenario}: ${result.ok ? 'ok' : 'FAILED'}`;
  const body = [
    `<h1 class="${result.ok ? 'ok' : 'bad'}">${esc(title)}</h1>`,
    `<p class="sub">run ${esc(String(result.stats.runTag ?? ''))}, ${esc(String(result.stats.durationMs ?? '?'))} ms; parameters ${esc(JSON.stringify(result.stats.params ?? {}))}</p>`,
    section('summary', 'Summary', `<pre>${esc(input.summary.join('\n'))}</pre>`),
    section('checks', `Checks (${result.checks.filter((c) => c.ok).length} of ${result.checks.length} passed)`, checksTable(result)),
    section('leaks', 'Leaks', leaksTable(result)),
    section('counters', 'Counters over time', counterCharts(input)),
    section('messages', 'Messages', sequence(input)),
    section('layouts', 'Shared buffers: page layout', layouts(input)),
  ];
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${esc(title)}</title>
<style>${CSS}</style></head>
<body>
${body.join('\n')}
<footer>Written by <code>hdmabuf run --report</code>. Protocol: protocol/SPEC.md.</footer>
</body></html>
`;
}

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:16px 24px;color:#222;max-width:1400px}
h1{font-size:22px;margin:0 0 4px} h1.ok{color:#17692f} h1.bad{color:#b00020}
h2{font-size:17px;margin:22px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
h3{font-size:14px;margin:12px 0 4px}
.sub{color:#666;margin:0 0 8px} pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:12px}
table{border-collapse:collapse;font-size:12px} td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#17692f;font-weight:bold} .fail{color:#b00020;font-weight:bold}
.charts{display:flex;flex-wrap:wrap;gap:8px 18px}
svg .plot{fill:#fafafa;stroke:#ccc} svg .grid{stroke:#e4e4e4} svg .ax{font-size:10px;fill:#666} svg .ct{font-size:12px;font-weight:bold;fill:#333} svg .lg{font-size:10px;fill:#333}
.layout{margin:6px 0 14px} .note{color:#666;font-size:12px}
code{font-size:12px}
footer{margin-top:28px;color:#888;font-size:12px}
`;

function section(id: string, title: string, html: string): string {
  return `<section id="${id}"><h2>${esc(title)}</h2>\n${html}\n</section>`;
}

function checksTable(result: RunResult): string {
  const rows = result.checks.map((c, i) => `<tr><td class="num">${i + 1}</td><td class="${c.ok ? 'pass' : 'fail'}">${c.ok ? '✓' : '✗'}</td><td>${esc(c.name)}</td><td>${esc(c.detail ?? '')}</td></tr>`);
  return `<table class="checks"><tr><th>#</th><th></th><th>check</th><th>detail</th></tr>${rows.join('')}</table>`;
}

function leaksTable(result: RunResult): string {
  const rows = Object.entries(result.leaks).map(([k, v]) => `<tr><td>${esc(k)}</td><td class="num ${v === 0 ? 'pass' : 'fail'}">${v}</td></tr>`);
  return `<table class="leaks"><tr><th>left after the run</th><th>count</th></tr>${rows.join('')}</table><p class="note">Measured after every process was stopped: busy grant entries and mappings from the backend's last HV_STATS, processes of the run still running, shared-memory files of the run.</p>`;
}

/** VM tracks, grouped into charts (others go to a last chart). */
const VM_CHARTS: readonly ChartSpec[] = [
  { title: 'pages', tracks: ['pages used', 'pages mapped'] },
  { title: 'grants, mappings, ports', tracks: ['grant refs granted', 'mappings live', 'ports open'] },
  { title: 'protocol bytes', tracks: ['wire bytes out', 'wire bytes in'] },
  { title: 'protocol frames', tracks: ['wire frames out', 'wire frames in'] },
];

/** hv tracks: one chart per domain ("dom1 ..."), one for the rest. */
function hvCharts(tracks: readonly string[]): ChartSpec[] {
  const byDom = new Map<string, string[]>();
  const rest: string[] = [];
  for (const t of tracks) {
    const m = /^(dom\d+) /.exec(t);
    if (m) byDom.set(m[1]!, [...(byDom.get(m[1]!) ?? []), t]);
    else rest.push(t);
  }
  return [...[...byDom].map(([dom, ts]) => ({ title: `${dom} as hv sees it`, tracks: ts })), ...(rest.length ? [{ title: 'backend', tracks: rest }] : [])];
}

function counterCharts(input: ReportInput): string {
  const counters = input.records.filter((r): r is CounterRecord => r.k === 'c');
  const durationS = Math.max(0, ...counters.map((c) => (c.ts - input.startUs) / 1e6));
  const out: string[] = [];
  for (const p of input.participants) {
    const mine = counters.filter((c) => c.pid === p.pid).sort((a, b) => a.ts - b.ts);
    if (mine.length === 0) continue;
    const tracks = [...new Set(mine.flatMap((c) => Object.keys(c.values)))];
    let specs: ChartSpec[];
    if (p.domid === undefined) {
      specs = hvCharts(tracks);
    } else {
      const known = new Set(VM_CHARTS.flatMap((c) => c.tracks));
      const other = tracks.filter((t) => !known.has(t));
      specs = [...VM_CHARTS, ...(other.length ? [{ title: 'other', tracks: other }] : [])];
    }
    const charts = specs.map((spec) => {
      const series: Series[] = spec.tracks.filter((t) => tracks.includes(t)).map((t) => ({
        name: t,
        points: mine.filter((c) => c.values[t] !== undefined).map((c) => [(c.ts - input.startUs) / 1e6, c.values[t]!] as const),
      }));
      return series.length ? lineChart(`${p.label}: ${spec.title}`, series, durationS) : '';
    });
    out.push(`<h3>${esc(p.label)} <span class="note">(${mine.length} samples)</span></h3><div class="charts" data-process="${esc(p.label)}" data-samples="${mine.length}">${charts.join('')}</div>`);
  }
  if (out.length === 0) return '<p class="note">No counter was sampled.</p>';
  return `<p class="note">Each process samples its own counters every 100 ms while the run is traced: hv the figures of HV_STATS (SPEC.md 9.4) per domain, each VM its kernel's. The last samples are taken just before shutdown.</p>${out.join('\n')}`;
}

function sequence(input: ReportInput): string {
  const wire = input.records.filter((r): r is WireRecord => r.k === 'w');
  const arrows = messageArrows(wire, input.participants);
  if (arrows.length === 0) return '<p class="note">No message was recorded.</p>';
  const row = (m: MessageArrow, i: number): string => `<tr><td class="num">${i + 1}</td><td class="num">${((m.ts - input.startUs) / 1000).toFixed(2)}</td><td>${esc(m.from.label)}</td><td>${m.kind === 'res' ? '⇠' : m.kind === 'err' ? '✗' : '→'}</td><td>${esc(m.to.label)}</td><td><code>${esc(m.label)}</code></td></tr>`;
  const head = '<tr><th>#</th><th>ms</th><th>from</th><th></th><th>to</th><th>message</th></tr>';
  const first = arrows.slice(0, SEQUENCE_ROWS);
  const lastStart = Math.max(first.length, arrows.length - SEQUENCE_ROWS);
  const last = arrows.slice(lastStart);
  const parts = [`<p class="note">${arrows.length} messages in all (each once, from its sender to its receiver; replies ⇠, errors ✗). The whole sequence is in the <code>--mermaid</code> diagram and the <code>--trace</code> file.</p>`];
  parts.push(`<h3>First ${first.length}</h3><table class="seq" data-part="first">${head}${first.map((m, i) => row(m, i)).join('')}</table>`);
  if (last.length) parts.push(`<h3>Last ${last.length}${lastStart > first.length ? ` (after ${lastStart - first.length} more)` : ''}</h3><table class="seq" data-part="last">${head}${last.map((m, i) => row(m, lastStart + i)).join('')}</table>`);
  return parts.join('\n');
}

function layouts(input: ReportInput): string {
  const recs = input.records.filter((r): r is LayoutRecord => r.k === 'l').sort((a, b) => a.ts - b.ts);
  if (recs.length === 0) return '<p class="note">No buffer was exported while the run was traced.</p>';
  const name = new Map(input.participants.map((p) => [p.pid, p.label]));
  const domName = new Map(input.participants.filter((p) => p.domid !== undefined).map((p) => [p.domid!, p.label]));
  const out = recs.map((l) => {
    const pages = l.runs.reduce((n, r) => n + r[1], 0);
    const listed = l.runs.slice(0, LISTED_RUNS).map(([f, n]) => (n === 1 ? `${f}` : `${f}–${f + n - 1} (${n})`)).join(', ');
    const more = l.runs.length > LISTED_RUNS ? `, … ${l.runs.length - LISTED_RUNS} more runs` : '';
    return `<div class="layout" data-hid="${esc(l.hid)}" data-runs="${l.runs.length}" data-dir-pages="${l.dirFrames.length}">
<h3>buf ${esc(l.hid)} of ${esc(name.get(l.pid) ?? String(l.pid))} → ${esc(domName.get(l.target) ?? `dom${l.target}`)}${l.gen ? `, after move ${l.gen}` : ''}</h3>
<div>${compact(l.size)} bytes in ${pages} pages, ${l.runs.length} run${l.runs.length === 1 ? '' : 's'} of adjacent frames: ${esc(listed)}${more}; directory (${esc(l.dirFormat)}): ${l.dirFrames.length} page${l.dirFrames.length === 1 ? '' : 's'} at frame${l.dirFrames.length === 1 ? '' : 's'} ${esc(l.dirFrames.slice(0, LISTED_RUNS).join(', '))}${l.dirFrames.length > LISTED_RUNS ? ', …' : ''}</div>
${ramStrip(l)}</div>`;
  });
  return `<p class="note">Where each exported buffer's pages were in its exporter's RAM (frame numbers), when first seen and after each move: blue runs of data pages, orange directory pages (SPEC.md 10.3). At most 64 buffers per VM are recorded.</p>${out.join('\n')}`;
}

/** The buffer's frames on a strip spanning the lowest to the highest frame it uses. */
function ramStrip(l: LayoutRecord): string {
  const width = 900;
  const h = 18;
  const lo = Math.min(...l.runs.map((r) => r[0]), ...l.dirFrames);
  const hi = Math.max(...l.runs.map((r) => r[0] + r[1]), ...l.dirFrames.map((f) => f + 1));
  const span = Math.max(1, hi - lo);
  const x = (f: number): number => ((f - lo) / span) * width;
  const rects = l.runs.map(([f, n]) => `<rect x="${x(f).toFixed(2)}" y="2" width="${Math.max(0.8, x(f + n) - x(f)).toFixed(2)}" height="${h}" fill="#4a79c4"><title>frames ${f}–${f + n - 1}</title></rect>`);
  const dirs = l.dirFrames.map((f) => `<rect x="${x(f).toFixed(2)}" y="2" width="${Math.max(2, x(f + 1) - x(f)).toFixed(2)}" height="${h}" fill="#f08a24"><title>directory page at frame ${f}</title></rect>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" class="strip" width="${width}" height="${h + 18}" viewBox="0 0 ${width} ${h + 18}"><rect x="0" y="2" width="${width}" height="${h}" fill="#eee"/>${rects.join('')}${dirs.join('')}<text x="0" y="${h + 15}" font-size="10" fill="#666">frame ${lo}</text><text x="${width}" y="${h + 15}" font-size="10" fill="#666" text-anchor="end">frame ${hi - 1}</text></svg>`;
}
