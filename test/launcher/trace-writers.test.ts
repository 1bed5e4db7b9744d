/**
 * The trace writers on synthetic records: flows joined across processes
 * (through hv for routed messages), request slices, lanes that never
 * overlap, and Mermaid's collapsing of repeated blocks.
 */
import { describe, expect, it } from 'vitest';
import { toChromeTrace } from '../../vm-sim/trace/chrome.ts';
import { collapseRepeats } from '../../vm-sim/trace/collapse.ts';
import { groupFlows } from '../../vm-sim/trace/flows.ts';
import { assignLanes } from '../../vm-sim/trace/lanes.ts';
import { toMermaid } from '../../vm-sim/trace/mermaid.ts';
import type { WireRecord } from '../../vm-sim/trace/records.ts';
import { checkSequenceDiagram } from './mermaid-check.ts';
import { devtoolsView } from '../trace/devtools-engine.ts';

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
  it('draws routed messages sender to receiver and collapses repetitions into a loop', () => {
    const recs = Array.from({ length: 50 }, (_, i) => routedPair(1000 + i * 100, i + 1)).flat();
    const text = toMermaid(recs, [
      { id: 'hv', label: 'hv', pid: HV, domid: undefined },
      { id: 'd1', label: 'render (dom1)', pid: A, domid: 1 },
      { id: 'd2', label: 'compositor (dom2)', pid: B, domid: 2 },
    ], 'test');
    const d = checkSequenceDiagram(text);
    expect(d.problems).toEqual([]);
    expect(d.loops).toBe(1);
    expect(text).toContain('loop 48 more times');
    expect(text).toContain('d1->>d2: SIM_FRAME_HANDOFF');
    expect(text).toContain('d2-->>d1: SIM_FRAME_HANDOFF');
    expect(text).not.toContain('hv->>d2');
  });

  it('collapses the longest covering block and keeps lone lines', () => {
    const lines = ['x', ...Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? 'a' : i % 3 === 1 ? 'b' : 'c')), 'y'].map((text) => ({ text }));
    expect(collapseRepeats(lines)).toEqual(['x', 'a', 'b', 'c', 'a', 'b', 'c', 'loop 2 more times', '  a', '  b', '  c', 'end', 'y']);
    expect(collapseRepeats([{ text: 'a' }, { text: 'a' }])).toEqual(['a', 'a']);
  });
});
