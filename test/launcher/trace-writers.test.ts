/**
 * The trace writers on synthetic records: flows joined across processes
 * (through hv for routed messages), request slices, lanes that never
 * overlap, and Mermaid's collapsing of repeated blocks.
 */
import { describe, expect, it } from 'vitest';
import { toChromeTrace } from '../../vm-sim/trace/chrome.ts';
import { collapseRepeats, elideMiddle, foldRepeats, rangeLabel } from '../../vm-sim/trace/collapse.ts';
import { groupFlows } from '../../vm-sim/trace/flows.ts';
import { assignLanes } from '../../vm-sim/trace/lanes.ts';
import { toMermaid } from '../../vm-sim/trace/mermaid.ts';
import type { WireRecord } from '../../vm-sim/trace/records.ts';
import { checkSequenceDiagram } from './mermaid-check.ts';
import { devtoolsView } from '../trace/devtools-engine.ts';
import { mermaidParse } from '../trace/mermaid-parse.ts';

const A = 100; // render, dom1
const HV = 200;
const B = 300; // compositor, dom2

function w(pid: number, ts: number, dir: 'in' | 'out', flow: string, type: string, kind: WireRecord['kind'], extra: Partial<WireRecord> = {}): WireRecord {
  return { k: 'w', pid, ts, dir, conn: 'c1', dom: undefined, flow, kind, type, id: 1, ...extra };
}

/** One routed request and its reply: A -> hv -> B, then B -> hv -> A. */
function routedPair(t: number, n: number): WireRecord[] {
  return [
    w(A, t, 'out', `u:1:${n}`, 'SIM_FRAME_HANDOFF', 'req', { dst: 2, id: n, dom: 1 }),
    w(HV, t + 10, 'in', `u:1:${n}`, 'SIM_FRAME_HANDOFF', 'req', { dst: 2, id: n, dom: 1 }),
    w(HV, t + 11, 'out', `d:2:${n}`, 'SIM_FRAME_HANDOFF', 'req', { via: `u:1:${n}`, src: 1, dst: 2, id: n, dom: 2 }),
    w(B, t + 20, 'in', `d:2:${n}`, 'SIM_FRAME_HANDOFF', 'req', { src: 1, dst: 2, id: n, dom: 2 }),
    w(B, t + 50, 'out', `u:2:${n}`, 'SIM_FRAME_HANDOFF', 'res', { dst: 1, id: n, dom: 2 }),
    w(HV, t + 60, 'in', `u:2:${n}`, 'SIM_FRAME_HANDOFF', 'res', { dst: 1, id: n, dom: 2 }),
    w(HV, t + 61, 'out', `d:1:${n}`, 'SIM_FRAME_HANDOFF', 'res', { via: `u:2:${n}`, src: 2, dst: 1, id: n, dom: 1 }),
    w(A, t + 70, 'in', `d:1:${n}`, 'SIM_FRAME_HANDOFF', 'res', { src: 2, id: n, dom: 1 }),
  ];
}

describe('flows', () => {
  it('join a routed message into one flow, ordered by hop whatever the clocks say', () => {
    const recs = routedPair(1000, 1);
    // A clock skew that puts hv before the sender must not reorder the hops.
    (recs[1] as { ts: number }).ts = 990;
    const flows = groupFlows(recs);
    expect(flows).toHaveLength(2);
    expect(flows[0]!.records.map((r) => [r.pid, r.dir])).toEqual([[A, 'out'], [HV, 'in'], [HV, 'out'], [B, 'in']]);
  });
});

describe('lanes', () => {
  it('never put overlapping intervals on one lane, and drop past the limit', () => {
    const items = [{ ts: 0, dur: 10 }, { ts: 5, dur: 10 }, { ts: 10, dur: 1 }, { ts: 6, dur: 1 }];
    expect(assignLanes(items, 4)).toEqual([0, 1, 0, 2]);
    expect(assignLanes(items, 2)).toEqual([0, 1, 0, -1]);
  });
});

describe('Chrome trace', () => {
  it('has named tracks, s/t/f flows inside message slices, and request slices on both ends', () => {
    const recs = [...routedPair(1000, 1), ...routedPair(2000, 2)];
    const trace = toChromeTrace(recs, [
      { pid: A, name: 'render (dom1)', sortIndex: 3 }, { pid: HV, name: 'hv', sortIndex: 1 }, { pid: B, name: 'compositor (dom2)', sortIndex: 4 },
    ], 0);
    const ev = trace.traceEvents;
    expect(ev.filter((e) => e.name === 'process_name').map((e) => e.pid).sort()).toEqual([A, HV, B]);
    const flow1 = ev.filter((e) => ['s', 't', 'f'].includes(e.ph) && e.id === 1);
    expect(flow1.map((e) => [e.ph, e.pid])).toEqual([['s', A], ['t', HV], ['t', HV], ['f', B]]);
    for (const f of ev.filter((e) => ['s', 't', 'f'].includes(e.ph))) {
      // The binding of both viewers: a slice with the same ts, pid, tid and cat (DevTools), which encloses it (Perfetto).
      const bound = ev.filter((s) => s.ph === 'X' && s.cat === f.cat && s.pid === f.pid && s.tid === f.tid && s.ts === f.ts);
      expect(bound).toHaveLength(1);
    }
    const rpc = ev.filter((e) => e.cat === 'rpc');
    expect(rpc.find((e) => e.pid === A && e.name === 'SIM_FRAME_HANDOFF')).toMatchObject({ ts: 1000, dur: 70 });
    expect(rpc.find((e) => e.pid === B && e.name === 'handle SIM_FRAME_HANDOFF')).toMatchObject({ ts: 1020, dur: 30 });
    expect(trace.otherData.flows).toBe(4);
  });

  it('binds every flow in DevTools\' trace engine, with every hop', async () => {
    const recs = [...routedPair(1000, 1), ...routedPair(2000, 2)];
    const trace = toChromeTrace(recs, [
      { pid: A, name: 'render (dom1)', sortIndex: 3 }, { pid: HV, name: 'hv', sortIndex: 1 }, { pid: B, name: 'compositor (dom2)', sortIndex: 4 },
    ], 0);
    const view = await devtoolsView(trace.traceEvents);
    expect(view.flows).toHaveLength(4);
    expect(view.flows[0]!.map((e) => e.pid)).toEqual([A, HV, HV, B]);
  });

  it('writes counters as C tracks, and metadata first in display order with lanes named in order', () => {
    const spans = Array.from({ length: 12 }, (_, i) => ({ k: 's' as const, pid: HV, name: `op${i}`, cat: 'cmd', ts: 100 + i, dur: 50 }));
    const counters = [0, 1, 2].map((i) => ({ k: 'c' as const, pid: HV, ts: 100 * i, values: { 'dom1 grants in use': i, 'shm files': 2 } }));
    const trace = toChromeTrace([...spans, ...counters], [{ pid: B, name: 'b', sortIndex: 4 }, { pid: HV, name: 'hv', sortIndex: 1 }], 0);
    const ev = trace.traceEvents;
    const c = ev.filter((e) => e.ph === 'C');
    expect(c.filter((e) => e.name === 'dom1 grants in use').map((e) => [e.ts, (e.args as { value: number }).value])).toEqual([[0, 0], [100, 1], [200, 2]]);
    expect(trace.otherData).toMatchObject({ counterTracks: 2, counterSamples: 3 });
    const meta = ev.slice(0, ev.findIndex((e) => e.ph !== 'M'));
    expect(ev.slice(meta.length).some((e) => e.ph === 'M')).toBe(false);
    expect(meta.filter((e) => e.name === 'process_name').map((e) => e.pid)).toEqual([HV, B]);
    const lanes = meta.filter((e) => e.name === 'thread_name' && e.pid === HV).map((e) => (e.args as { name: string }).name);
    expect(lanes).toEqual(['messages', ...Array.from({ length: 12 }, (_, i) => `ops ${String(i + 1).padStart(2, '0')}`)]);
  });
});

describe('Mermaid', () => {
  const participants = [
    { id: 'hv', label: 'hv', pid: HV, domid: undefined },
    { id: 'd1', label: 'render (dom1)', pid: A, domid: 1 },
    { id: 'd2', label: 'compositor (dom2)', pid: B, domid: 2 },
  ];
  /** Handoffs carrying their frame number, then a teardown. */
  function handoffRun(frames: number): WireRecord[] {
    const recs = Array.from({ length: frames }, (_, i) => routedPair(1000 + i * 100, i + 1)).flat()
      .map((r) => (r.kind === 'req' ? { ...r, info: `buf 1:${r.id % 3}, frame ${r.id}` } : r));
    recs.push(w(A, 1e9, 'out', 'u:1:x', 'DMABUF_NOTIFY_UNEXPORT', 'req', { dst: 2, id: 9999, dom: 1, info: 'buf 1:0' }));
    return recs;
  }

  it('draws routed messages sender to receiver with their key fields, and folds repetitions into a loop with ranges', async () => {
    const text = toMermaid(handoffRun(50), participants, { title: 'test' });
    const d = checkSequenceDiagram(text);
    expect(d.problems).toEqual([]);
    expect(d.loops).toBe(1);
    expect(text).toContain('d1->>d2: SIM_FRAME_HANDOFF buf 1:1, frame 1\n');
    expect(text).toContain('d2-->>d1: SIM_FRAME_HANDOFF\n');
    // 50 frames: two shown, 48 in the loop, whose numbers read as ranges.
    expect(text).toContain('loop 48 more times\n    d1->>d2: SIM_FRAME_HANDOFF buf 1:0..2, frame 3..50\n    d2-->>d1: SIM_FRAME_HANDOFF\n  end');
    expect(text.trimEnd().split('\n').at(-1)).toBe('  d1->>d2: DMABUF_NOTIFY_UNEXPORT buf 1:0');
    expect(text).not.toContain('hv->>d2');
    await expect(mermaidParse(text)).resolves.toBe('sequence');
  });

  it('starts a folded block at a request, not at the reply before the next request', () => {
    // A first exchange that differs, then replies and requests alternate: the loop must hold request-reply pairs.
    const line = (prefix: string, label: string, startsBlock = true): { prefix: string; label: string; startsBlock: boolean } => ({ prefix, label, startsBlock });
    const lines = [line('a->>b: ', 'REQ first'), line('b->>a: ', 'OTHER'), line('a-->>b: ', 'OTHER', false)];
    for (let f = 0; f < 10; f++) lines.push(line('b-->>a: ', 'REQ', false), line('a->>b: ', `REQ frame ${f}`));
    lines.push(line('b-->>a: ', 'REQ', false));
    const out = collapseRepeats(lines);
    expect(out).toEqual([
      'a->>b: REQ first', 'b->>a: OTHER', 'a-->>b: OTHER', 'b-->>a: REQ',
      'a->>b: REQ frame 0', 'b-->>a: REQ', 'a->>b: REQ frame 1', 'b-->>a: REQ',
      'loop 8 more times', '  a->>b: REQ frame 2..9', '  b-->>a: REQ', 'end',
    ]);
  });

  it('keeps lone lines, and reads varying numbers as ranges', () => {
    const l = (label: string): { prefix: string; label: string } => ({ prefix: '', label });
    const lines = [l('x'), ...Array.from({ length: 12 }, (_, i) => l(i % 3 === 0 ? 'a' : i % 3 === 1 ? 'b' : 'c')), l('y')];
    expect(collapseRepeats(lines)).toEqual(['x', 'a', 'b', 'c', 'a', 'b', 'c', 'loop 2 more times', '  a', '  b', '  c', 'end', 'y']);
    expect(collapseRepeats([l('a'), l('a')])).toEqual(['a', 'a']);
    expect(rangeLabel(['f 1 of 7', 'f 5 of 7', 'f 3 of 7'])).toBe('f 1..5 of 7');
  });

  it('elides the middle, never the end, past maxLines, and says so', async () => {
    // Frames that never repeat in shape (a different type each): nothing folds.
    const recs: WireRecord[] = [];
    for (let i = 0; i < 300; i++) recs.push(w(A, 1000 + i, 'out', `u:1:${i}`, `T${String.fromCharCode(65 + (i % 26))}${i}`.replace(/\d/g, ''), 'evt', { dst: 2, id: i, dom: 1 }));
    recs.push(w(A, 1e9, 'out', 'u:1:end', 'TEARDOWN', 'req', { dst: 2, id: 1, dom: 1 }));
    const text = toMermaid(recs, participants, { maxLines: 100 });
    const body = text.split('\n').filter((l) => /->>|-->>|--x/.test(l));
    expect(body.length).toBeLessThanOrEqual(100);
    expect(text).toMatch(/Note over hv,d2: \d+ lines of the middle of the run not shown/);
    expect(body.at(-1)).toBe('  d1->>d2: TEARDOWN');
    await expect(mermaidParse(text)).resolves.toBe('sequence');
    // No limit: everything.
    expect(toMermaid(recs, participants, { maxLines: 0 }).split('\n').filter((l) => /->>/.test(l))).toHaveLength(301);
    // Whole items only: a loop block is never cut.
    const items = foldRepeats(Array.from({ length: 40 }, () => ({ prefix: '', label: 'a' })));
    expect(items.map((it) => it.lines.length)).toEqual([1, 1, 3]);
    expect(elideMiddle(items, 4)).toEqual({ head: [items[0]], tail: [items[2]], omitted: 1 });
    // The last item shows even when it alone is over the limit.
    expect(elideMiddle(items, 2)).toEqual({ head: [], tail: [items[2]], omitted: 2 });
  });
});
