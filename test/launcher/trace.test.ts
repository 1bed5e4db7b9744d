/**
 * A compositor run with --trace (gzipped) and --mermaid: the trace is valid
 * Chrome trace JSON with one named track per process, flow arrows joining
 * senders to receivers that DevTools' trace engine binds every one of,
 * counter tracks and start-up slices; the diagram is a well-formed sequence
 * diagram with the repeated frames collapsed into a loop.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChromeEvent, ChromeTrace } from '../../vm-sim/trace/chrome.ts';
import { failing, pidsOf, runJson } from './cli.ts';
import { checkSequenceDiagram } from './mermaid-check.ts';
import { devtoolsView } from '../trace/devtools-engine.ts';
import { expectDiagramViewable } from '../trace/run-views.ts';

const dir = mkdtempSync(join(tmpdir(), 'hdmabuf-trace-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('compositor --trace --mermaid', () => {
  it('writes a trace with a track per process and flows, and a parseable sequence diagram', async () => {
    const tracePath = join(dir, 'run.json.gz');
    const mermaidPath = join(dir, 'run.mmd');
    const { code, result } = await runJson('compositor', ['--param', 'frames=20', '--trace', tracePath, '--mermaid', mermaidPath]);
    expect(failing(result)).toEqual([]);
    expect(code).toBe(0);

    const trace = JSON.parse(gunzipSync(readFileSync(tracePath)).toString('utf8')) as ChromeTrace;
    expect(Array.isArray(trace.traceEvents)).toBe(true);
    const ev = trace.traceEvents;
    for (const e of ev) {
      expect(typeof e.name).toBe('string');
      expect(typeof e.ph).toBe('string');
      expect(Number.isInteger(e.pid)).toBe(true);
      expect(Number.isInteger(e.tid)).toBe(true);
      if (e.ph !== 'M') expect(Number.isFinite(e.ts)).toBe(true);
    }
    // One named track per process: the launcher, hv and both VMs.
    const names = ev.filter((e) => e.ph === 'M' && e.name === 'process_name');
    const launcher = (result.stats.pids as { launcher: number }).launcher;
    expect(new Set(names.map((e) => e.pid)).size).toBe(names.length);
    expect(names.map((e) => (e.args as { name: string }).name).sort()).toEqual(['compositor (dom2)', 'hv', 'launcher (dom0)', 'render (dom1)']);
    expect(names.map((e) => e.pid).sort()).toEqual([launcher, ...pidsOf(result)].sort());
    const tracked = new Set(names.map((e) => e.pid));
    for (const e of ev) expect(tracked.has(e.pid)).toBe(true);

    // Flows: each id starts once (s) and finishes once (f), in two different processes, steps (t) in between.
    const byId = new Map<number, ChromeEvent[]>();
    for (const e of ev.filter((x) => ['s', 't', 'f'].includes(x.ph))) {
      const list = byId.get(e.id!) ?? [];
      list.push(e);
      byId.set(e.id!, list);
    }
    expect(byId.size).toBeGreaterThan(40);
    for (const list of byId.values()) {
      expect(list.filter((e) => e.ph === 's')).toHaveLength(1);
      expect(list.filter((e) => e.ph === 'f')).toHaveLength(1);
      expect(new Set(list.map((e) => e.name)).size).toBe(1);
      expect(list[0]!.pid).not.toBe(list[list.length - 1]!.pid);
    }
    // A handoff travels render -> hv -> compositor as one flow: s in render, t (in and out) in hv, f in the compositor.
    const [, hvPid, renderPid, compositorPid] = [launcher, ...pidsOf(result)];
    const handoffs = [...byId.values()].filter((l) => l[0]!.name === 'SIM_FRAME_HANDOFF' && l[0]!.pid === renderPid);
    expect(handoffs.length).toBe(20);
    for (const l of handoffs) expect(l.map((e) => [e.ph, e.pid])).toEqual([['s', renderPid], ['t', hvPid], ['t', hvPid], ['f', compositorPid]]);

    // Every flow event sits inside a message slice of its thread, and slices of one thread never overlap.
    const slices = ev.filter((e) => e.ph === 'X');
    const byThread = new Map<string, ChromeEvent[]>();
    for (const s of slices) {
      const k = `${s.pid}/${s.tid}`;
      byThread.set(k, [...(byThread.get(k) ?? []), s]);
    }
    for (const list of byThread.values()) {
      list.sort((a, b) => a.ts! - b.ts!);
      for (let i = 1; i < list.length; i++) expect(list[i]!.ts!).toBeGreaterThanOrEqual(list[i - 1]!.ts! + list[i - 1]!.dur!);
    }
    for (const f of ev.filter((x) => ['s', 't', 'f'].includes(x.ph))) {
      const enclosing = (byThread.get(`${f.pid}/${f.tid}`) ?? []).some((s) => s.ts! <= f.ts! && f.ts! <= s.ts! + s.dur!);
      expect(enclosing).toBe(true);
      // Perfetto binds t and f to the enclosing slice only with bp "e".
      if (f.ph !== 's') expect(f.bp).toBe('e');
    }
    // DevTools binds a flow event to the slice with the same ts, pid, tid and cat: every flow must bind, with all its hops.
    const view = await devtoolsView(ev);
    expect(view.flows.length).toBe(byId.size);
    expect(trace.otherData.flows).toBe(byId.size);
    expect(view.flows.map((f) => f.length).sort()).toEqual([...byId.values()].map((l) => l.length).sort());

    // Counter tracks: HV_STATS figures in hv, the kernel's counters in each VM, sampled through the run.
    const counters = ev.filter((e) => e.ph === 'C');
    for (const e of counters) expect(Number.isFinite((e.args as { value: number }).value)).toBe(true);
    const hvGrants = counters.filter((e) => e.pid === hvPid && e.name === 'dom1 grants in use');
    expect(hvGrants.length).toBeGreaterThan(2);
    expect(Math.max(...hvGrants.map((e) => (e.args as { value: number }).value))).toBeGreaterThan(0);
    expect(counters.filter((e) => e.pid === compositorPid && e.name === 'mappings live').length).toBeGreaterThan(2);
    expect(trace.otherData.counterTracks).toBe(new Set(counters.map((e) => `${e.pid}/${e.name}`)).size);

    // Metadata first, processes in sort order, lanes named in order.
    const firstNonMeta = ev.findIndex((e) => e.ph !== 'M');
    expect(ev.slice(firstNonMeta).some((e) => e.ph === 'M')).toBe(false);
    expect(names.map((e) => e.pid)).toEqual([launcher, hvPid, renderPid, compositorPid]);
    const threadNames = ev.filter((e) => e.name === 'thread_name' && e.pid === hvPid).map((e) => (e.args as { name: string }).name);
    expect(threadNames).toEqual([...threadNames].sort());

    // Start-up is shown: the launcher starting each process, each process's own start-up.
    expect(slices.filter((s) => s.cat === 'start' && s.pid === launcher).map((s) => s.name).sort()).toEqual(['start VM compositor', 'start VM render', 'start hv']);
    expect(slices.some((s) => s.pid === hvPid && s.name === 'hv start-up')).toBe(true);
    expect(slices.some((s) => s.pid === renderPid && s.name === 'VM boot')).toBe(true);

    // A slice per operation: the steps in the launcher, commands in the VMs, requests on both ends.
    expect(slices.some((s) => s.cat === 'step' && s.pid === launcher)).toBe(true);
    expect(slices.some((s) => s.cat === 'cmd' && s.name === 'sim.renderLoop')).toBe(true);
    expect(slices.some((s) => s.cat === 'rpc' && s.name === 'handle SIM_FRAME_HANDOFF')).toBe(true);

    const text = readFileSync(mermaidPath, 'utf8');
    const d = checkSequenceDiagram(text);
    expect(d.problems).toEqual([]);
    expect(d.participants).toEqual(['launcher', 'hv', 'd1', 'd2']);
    expect(d.loops).toBeGreaterThanOrEqual(1);
    // Arrows carry key fields; the frames fold into one loop of request-reply pairs with the frame range.
    expect(text).toMatch(/d1->>d2: SIM_FRAME_HANDOFF buf 1:\d+, frame 1\n/);
    expect(text).toMatch(/loop 15 more times\n    d1->>d2: SIM_FRAME_HANDOFF buf 1:1\.\.3, frame 6\.\.20\n    d2-->>d1: SIM_FRAME_HANDOFF\n  end/);
    await expectDiagramViewable(mermaidPath);
    // Collapsed: far fewer lines than the 40 handoff messages alone.
    expect(d.arrows).toBeLessThan(200);
  }, 90_000);
});
