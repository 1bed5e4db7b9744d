/**
 * Writes a run's records as Chrome trace event JSON (the "JSON Object
 * Format" that Perfetto and Chrome DevTools' Performance panel open).
 *
 * Layout: one process track per OS process, named (launcher, hv, each VM by
 * domain name), ordered launcher, hv, VMs by domain. In each:
 *   - thread 1 "messages": a short slice (at most 1 µs) per frame sent or received,
 *     joined across processes by flow arrows (s, t, f events) from the
 *     sender to the receiver, through hv for routed messages;
 *   - threads "ops NN": one slice per operation (start-up, a scenario step,
 *     a VM command, a drawing or a check);
 *   - threads "rpc NN": one slice per request, from the request to its
 *     reply, on both ends (the requester waiting, the handler working);
 *   - counter tracks ("C" events): the process's counters sampled through
 *     the run (counters.ts).
 * Overlapping slices go to separate lanes (lanes.ts), at most MAX_LANES per
 * kind and process; the count of slices that found no lane is reported in
 * otherData.droppedSlices.
 *
 * Flow binding: DevTools binds a flow event to the slice with the same ts,
 * pid, tid and cat; Perfetto binds s, and t and f with `bp: "e"`, to the
 * slice enclosing the event's ts on its thread. Each flow event therefore
 * has exactly its frame slice's ts and category, which satisfies both.
 *
 * Metadata (names, sort indexes) comes first, processes and threads in
 * display order, because viewers that ignore sort indexes order tracks by
 * first appearance.
 */
import { groupFlows } from './flows.ts';
import { assignLanes } from './lanes.ts';
import type { CounterRecord, SpanRecord, TraceRecord, WireRecord } from './records.ts';

/** A process of the run, as it appears in the trace. */
export interface TraceProcess {
  readonly pid: number;
  /** Track name, e.g. "hv", "render (dom1)". */
  readonly name: string;
  /** Sort order of tracks (launcher 0, hv 1, VMs by domain). */
  readonly sortIndex: number;
}

/** One Chrome trace event. */
export interface ChromeEvent {
  name: string;
  ph: string;
  pid: number;
  tid: number;
  ts?: number;
  dur?: number;
  cat?: string;
  id?: number;
  bp?: string;
  args?: Record<string, unknown>;
}

/** The file's top-level object. */
export interface ChromeTrace {
  traceEvents: ChromeEvent[];
  displayTimeUnit: 'ms' | 'ns';
  otherData: Record<string, unknown>;
}

/** Most lanes of each kind per process. */
export const MAX_LANES = 24;
const MESSAGES_TID = 1;
const OPS_TID = 2;
const RPC_TID = 100;
/** Category of frame slices and of their flow events (they must be equal for DevTools to bind). */
export const WIRE_CAT = 'wire';

interface Slice extends SpanRecord {
  /** Which lane family. */
  readonly family: 'ops' | 'rpc';
}

/** Builds the trace. Timestamps become microseconds since `baseUs` (the run's start). */
export function toChromeTrace(records: readonly TraceRecord[], processes: readonly TraceProcess[], baseUs: number, meta: Record<string, unknown> = {}): ChromeTrace {
  const known = new Set(processes.map((p) => p.pid));
  const wire = records.filter((r): r is WireRecord => r.k === 'w' && known.has(r.pid));
  const spans = records.filter((r): r is SpanRecord => r.k === 's' && known.has(r.pid));
  const counters = records.filter((r): r is CounterRecord => r.k === 'c' && known.has(r.pid));
  const body: ChromeEvent[] = [];
  const rel = (ts: number): number => Math.round((ts - baseUs) * 1000) / 1000;

  const placed = placeMessages(wire, rel);
  body.push(...messageSlices(wire, placed));
  const flows = flowEvents(wire, placed);
  body.push(...flows.events);

  const slices: Slice[] = [...spans.map((s) => ({ ...s, family: 'ops' as const })), ...rpcSlices(wire)];
  const lanes = laneSlices(slices, rel, body);
  const counted = counterEvents(counters, rel);
  body.push(...counted.events);

  return {
    traceEvents: [...metadata(processes, lanes.threads), ...body],
    displayTimeUnit: 'ms',
    otherData: {
      ...meta, clock: 'performance.timeOrigin + performance.now(), microseconds, relative to the run start', baseUs,
      droppedSlices: lanes.dropped, flows: flows.count, counterTracks: counted.tracks, counterSamples: counted.samples,
    },
  };
}

/** Names and sort indexes of every process and thread, in display order. */
function metadata(processes: readonly TraceProcess[], threads: ReadonlyMap<number, ReadonlySet<number>>): ChromeEvent[] {
  const out: ChromeEvent[] = [];
  for (const p of [...processes].sort((a, b) => a.sortIndex - b.sortIndex)) {
    out.push({ name: 'process_name', ph: 'M', pid: p.pid, tid: MESSAGES_TID, args: { name: p.name } });
    out.push({ name: 'process_sort_index', ph: 'M', pid: p.pid, tid: MESSAGES_TID, args: { sort_index: p.sortIndex } });
    const tids = [MESSAGES_TID, ...[...(threads.get(p.pid) ?? [])].sort((a, b) => a - b)];
    for (const tid of tids) {
      out.push({ name: 'thread_name', ph: 'M', pid: p.pid, tid, args: { name: threadName(tid) } });
      out.push({ name: 'thread_sort_index', ph: 'M', pid: p.pid, tid, args: { sort_index: tid } });
    }
  }
  return out;
}

/** "messages", "ops 01", "rpc 03": zero-padded so that a sort by name is the lane order too. */
function threadName(tid: number): string {
  if (tid === MESSAGES_TID) return 'messages';
  const family = tid >= RPC_TID ? 'rpc' : 'ops';
  const n = tid - (family === 'rpc' ? RPC_TID : OPS_TID) + 1;
  return `${family} ${String(n).padStart(2, '0')}`;
}

/** One "C" event per sampled value; each name is one counter track of its process. */
function counterEvents(counters: readonly CounterRecord[], rel: (ts: number) => number): { events: ChromeEvent[]; tracks: number; samples: number } {
  const events: ChromeEvent[] = [];
  const tracks = new Set<string>();
  const sorted = [...counters].sort((a, b) => a.ts - b.ts);
  for (const c of sorted) {
    for (const [name, value] of Object.entries(c.values)) {
      if (!Number.isFinite(value)) continue;
      tracks.add(`${c.pid}/${name}`);
      events.push({ name, cat: 'counter', ph: 'C', pid: c.pid, tid: MESSAGES_TID, ts: rel(c.ts), args: { value } });
    }
  }
  return { events, tracks: tracks.size, samples: sorted.length };
}

function messageLabel(r: WireRecord): string {
  const what = r.kind === 'res' ? ' (reply)' : r.kind === 'err' ? ` (error ${r.code ?? ''})` : r.kind === 'evt' ? ' (event)' : '';
  return `${r.dir === 'out' ? 'send' : 'recv'} ${r.type}${what}`;
}

/** Where a frame's slice sits on its process's messages thread. */
interface Placed {
  ts: number;
  dur: number;
}

/** Smallest gap kept between two message slices of one process (µs). */
const MIN_GAP_US = 0.01;

/**
 * Places each frame's slice: at its time, made strictly increasing per
 * process, lasting at most 1 µs and never reaching the next one, so that
 * slices never overlap and a flow event at a slice's ts binds to exactly that one.
 */
function placeMessages(wire: readonly WireRecord[], rel: (ts: number) => number): Map<WireRecord, Placed> {
  const byPid = new Map<number, WireRecord[]>();
  for (const r of wire) {
    let list = byPid.get(r.pid);
    if (!list) byPid.set(r.pid, (list = []));
    list.push(r);
  }
  const out = new Map<WireRecord, Placed>();
  for (const list of byPid.values()) {
    list.sort((a, b) => a.ts - b.ts);
    const ts = list.map((r) => rel(r.ts));
    for (let i = 1; i < ts.length; i++) if (ts[i]! < ts[i - 1]! + MIN_GAP_US) ts[i] = Math.round((ts[i - 1]! + MIN_GAP_US) * 1000) / 1000;
    list.forEach((r, i) => {
      const gap = i + 1 < ts.length ? ts[i + 1]! - ts[i]! : 2;
      const dur = Math.round(Math.min(1, gap / 2) * 1000) / 1000;
      out.set(r, { ts: ts[i]!, dur });
    });
  }
  return out;
}

/** A short slice per frame, on the messages thread (flows bind to them). */
function messageSlices(wire: readonly WireRecord[], placed: ReadonlyMap<WireRecord, Placed>): ChromeEvent[] {
  return wire.map((r) => ({
    name: messageLabel(r), cat: WIRE_CAT, ph: 'X', pid: r.pid, tid: MESSAGES_TID, ts: placed.get(r)!.ts, dur: placed.get(r)!.dur,
    args: {
      kind: r.kind, id: r.id, conn: r.conn, ...(r.dom !== undefined ? { domain: r.dom } : {}),
      ...(r.src !== undefined ? { src: r.src } : {}), ...(r.dst !== undefined ? { dst: r.dst } : {}),
      ...(r.code !== undefined ? { code: r.code } : {}), ...(r.info !== undefined ? { fields: r.info } : {}),
    },
  }));
}

/** s/t/f events per message seen by at least two processes, each at its frame slice's ts, in its category. */
function flowEvents(wire: readonly WireRecord[], placed: ReadonlyMap<WireRecord, Placed>): { events: ChromeEvent[]; count: number } {
  const events: ChromeEvent[] = [];
  let id = 0;
  for (const flow of groupFlows(wire)) {
    if (flow.records.length < 2) continue;
    id++;
    const last = flow.records.length - 1;
    flow.records.forEach((r, i) => {
      const ph = i === 0 ? 's' : i === last ? 'f' : 't';
      events.push({ name: flow.type, cat: WIRE_CAT, ph, id, pid: r.pid, tid: MESSAGES_TID, ts: placed.get(r)!.ts, ...(ph === 's' ? {} : { bp: 'e' }) });
    });
  }
  return { events, count: id };
}

/** A slice per request, from the request frame to its reply on the same connection. */
function rpcSlices(wire: readonly WireRecord[]): Slice[] {
  const open = new Map<string, WireRecord>();
  const out: Slice[] = [];
  const sorted = [...wire].sort((a, b) => a.ts - b.ts);
  for (const r of sorted) {
    if (r.kind === 'evt') continue;
    if (r.kind === 'req') {
      open.set(`${r.pid}/${r.conn}/${r.dir}/${r.id}`, r);
      continue;
    }
    const reqDir = r.dir === 'in' ? 'out' : 'in';
    const key = `${r.pid}/${r.conn}/${reqDir}/${r.id}`;
    const req = open.get(key);
    if (!req || req.type !== r.type) continue;
    open.delete(key);
    const name = req.dir === 'out' ? r.type : `handle ${r.type}`;
    out.push({
      k: 's', family: 'rpc', pid: r.pid, name, cat: 'rpc', ts: req.ts, dur: Math.max(0, r.ts - req.ts),
      args: { id: req.id, outcome: r.kind === 'err' ? (r.code ?? 'error') : 'ok', ...(req.dst !== undefined ? { dst: req.dst } : {}), ...(req.src !== undefined ? { src: req.src } : {}) },
    });
  }
  return out;
}

/** Places slices on lanes per process and family; appends X events; returns the threads used per pid and how many slices found no lane. */
function laneSlices(slices: readonly Slice[], rel: (ts: number) => number, events: ChromeEvent[]): { threads: Map<number, Set<number>>; dropped: number } {
  const byKey = new Map<string, Slice[]>();
  for (const s of slices) {
    const key = `${s.pid}/${s.family}`;
    let list = byKey.get(key);
    if (!list) byKey.set(key, (list = []));
    list.push(s);
  }
  let dropped = 0;
  const threads = new Map<number, Set<number>>();
  for (const list of byKey.values()) {
    const lanes = assignLanes(list, MAX_LANES);
    const pid = list[0]!.pid;
    let used = threads.get(pid);
    if (!used) threads.set(pid, (used = new Set()));
    list.forEach((s, i) => {
      const lane = lanes[i]!;
      if (lane < 0) { dropped++; return; }
      const tid = (s.family === 'ops' ? OPS_TID : RPC_TID) + lane;
      used.add(tid);
      events.push({ name: s.name, cat: s.cat, ph: 'X', pid: s.pid, tid, ts: rel(s.ts), dur: Math.round(s.dur * 1000) / 1000, ...(s.args ? { args: s.args } : {}) });
    });
  }
  return { threads, dropped };
}
