/**
 * A run's trace: the launcher's own records (its control connection, the
 * scenario's steps) and every child's batches, and who is who, from which
 * the Chrome trace and the Mermaid diagram are written at the end.
 */
import { writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import type { ManagedChild } from '../process/spawn/child.ts';
import { toChromeTrace, type TraceProcess } from '../trace/chrome.ts';
import { nowUs } from '../trace/clock.ts';
import { TraceCollector } from '../trace/collector.ts';
import { toMermaid, type MermaidParticipant } from '../trace/mermaid.ts';
import type { TraceRecord, WireRecord } from '../trace/records.ts';
import { renderReport } from '../report/html.ts';
import type { RunResult } from './result.ts';

/** How long a child has to answer a flush request. */
export const FLUSH_TIMEOUT_MS = 3000;

/** Collects a run's records. */
export class RunTrace {
  readonly startUs = nowUs();
  readonly records: TraceRecord[] = [];
  private readonly processes = new Map<number, TraceProcess & { domid: number | undefined }>();
  private readonly collector: TraceCollector;
  private readonly flushWaiters = new Map<number, () => void>();

  /** Starts collecting in this process (before the launcher opens its control connection). */
  constructor() {
    this.collector = new TraceCollector('client', (recs) => { for (const r of recs) this.records.push(r); });
    this.addProcess(process.pid, 'launcher (dom0)', 0, 0);
  }

  /** Names a process's track. */
  addProcess(pid: number, name: string, sortIndex: number, domid: number | undefined): void {
    this.processes.set(pid, { pid, name, sortIndex, domid });
  }

  /** Receives a child's batches, and asks it to start sending (it waits to be asked, see child-trace.ts). */
  attachChild(child: ManagedChild<unknown>): void {
    child.on('message', (msg: Record<string, unknown>) => {
      if (msg.type === 'trace' && Array.isArray(msg.records)) for (const r of msg.records as TraceRecord[]) this.records.push(r);
      else if (msg.type === 'trace.flushed') this.flushWaiters.get(child.pid)?.();
    });
    child.send({ type: 'trace.flush' });
  }

  /** Records a launcher operation that started at t0. */
  span(name: string, cat: string, t0: number, args?: Record<string, unknown>): void {
    this.collector.span(name, cat, t0, args);
  }

  /** Gets everything the live children collected so far (each answers or times out). */
  async flushChildren(children: ReadonlyArray<ManagedChild<unknown>>): Promise<void> {
    this.collector.flush();
    await Promise.all(children.filter((c) => c.exit === undefined).map((c) => new Promise<void>((resolve) => {
      const timer = setTimeout(done, FLUSH_TIMEOUT_MS);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.flushWaiters.set(c.pid, () => { this.flushWaiters.delete(c.pid); done(); });
      void c.exited.then(done);
      if (!c.send({ type: 'trace.flush' })) done();
    })));
  }

  /** Stops the launcher's collector. */
  stop(): void {
    this.collector.stop();
  }

  /** Writes the Chrome trace JSON (gzipped when the path ends in .gz, which Perfetto and DevTools open as is); returns its event count. */
  writeChrome(path: string, meta: Record<string, unknown>): number {
    const trace = toChromeTrace(this.records, [...this.processes.values()], this.startUs, meta);
    const json = JSON.stringify(trace);
    writeFileSync(path, path.endsWith('.gz') ? gzipSync(json) : json);
    return trace.traceEvents.length;
  }

  /** The processes in display order, as diagram participants. */
  participants(): MermaidParticipant[] {
    return [...this.processes.values()]
      .sort((a, b) => a.sortIndex - b.sortIndex)
      .map((p) => ({
        id: p.domid === undefined ? 'hv' : p.domid === 0 ? 'launcher' : `d${p.domid}`,
        label: p.name, pid: p.pid, domid: p.domid,
      }));
  }

  /** Writes the Mermaid sequence diagram (maxLines: see MermaidOptions). */
  writeMermaid(path: string, title: string, maxLines?: number): void {
    const wire = this.records.filter((r): r is WireRecord => r.k === 'w');
    writeFileSync(path, toMermaid(wire, this.participants(), { title, ...(maxLines !== undefined ? { maxLines } : {}) }));
  }

  /** Writes the run report (vm-sim/report/html.ts). */
  writeReport(path: string, result: RunResult, summary: readonly string[]): void {
    writeFileSync(path, renderReport({ result, summary, records: this.records, participants: this.participants(), startUs: this.startUs }));
  }
}
