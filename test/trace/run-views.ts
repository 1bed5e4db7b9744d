/**
 * Checks of what a run wrote for people to look at, shared by the tests
 * that run scenarios with --trace, --mermaid (and --report): the trace
 * loads in DevTools' trace engine with every flow bound and has counter
 * tracks; the diagram parses with the real Mermaid parser, keeps within
 * its line limit and ends with the run's teardown.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { expect } from 'vitest';
import type { ChromeTrace } from '../../vm-sim/trace/chrome.ts';
import { DEFAULT_MAX_LINES } from '../../vm-sim/trace/mermaid.ts';
import { checkSequenceDiagram } from '../launcher/mermaid-check.ts';
import { devtoolsView } from './devtools-engine.ts';
import { mermaidParse } from './mermaid-parse.ts';

/** Reads a trace written by --trace (gzipped when the name ends in .gz). */
export function readTrace(path: string): ChromeTrace {
  const bytes = readFileSync(path);
  return JSON.parse((path.endsWith('.gz') ? gunzipSync(bytes) : bytes).toString('utf8')) as ChromeTrace;
}

/** The trace: every flow bound by DevTools' engine, counter tracks in hv and in each VM. */
export async function expectTraceViewable(path: string, pids: { hv: number; vms: number[] }): Promise<ChromeTrace> {
  const trace = readTrace(path);
  const flows = trace.otherData.flows as number;
  expect(flows).toBeGreaterThan(0);
  const view = await devtoolsView(trace.traceEvents);
  expect(view.flows.length).toBe(flows);
  const counterPids = new Set(trace.traceEvents.filter((e) => e.ph === 'C').map((e) => e.pid));
  for (const pid of [pids.hv, ...pids.vms]) expect(counterPids.has(pid)).toBe(true);
  return trace;
}

/** The diagram: accepted by Mermaid, within the default limit, ending with the backend reporting the domains dead. */
export async function expectDiagramViewable(path: string): Promise<string> {
  const text = readFileSync(path, 'utf8');
  expect(checkSequenceDiagram(text).problems).toEqual([]);
  await expect(mermaidParse(text)).resolves.toBe('sequence');
  const arrows = text.split('\n').filter((l) => /^\s+\w+(->>|-->>|--x)\w+: /.test(l));
  expect(arrows.length).toBeLessThanOrEqual(DEFAULT_MAX_LINES);
  // The teardown: the launcher's last HV_STATS (and the domains dying, when hv's last batch has them), after every buffer was unexported.
  expect(arrows.at(-1)).toMatch(/: (DOMAIN_DIED \(event\) dom \d+|HV_STATS)$/);
  expect(text.lastIndexOf('DMABUF_NOTIFY_UNEXPORT')).toBeGreaterThan(text.lastIndexOf('lines of the middle of the run not shown'));
  return text;
}
