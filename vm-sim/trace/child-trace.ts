/**
 * Tracing in a child process (the backend or a VM), turned on by the
 * launcher with HDMABUF_TRACE=1 in the child's environment. Records go to
 * the launcher as IPC messages { type: 'trace', records }. Nothing is sent
 * until the launcher asks with a { type: 'trace.flush' } message: it only
 * listens once the child has reported ready, and a batch sent before would
 * be lost. The first request sends what the child collected while starting
 * and turns on periodic batches; every request is answered, after its
 * batch, by { type: 'trace.flushed' }, so the launcher knows when it has
 * everything (it asks once more just before it shuts the run down).
 */
import { isTyped } from '../process/spawn/ipc.ts';
import { TraceCollector } from './collector.ts';
import { TRACE_ENV, type TraceBatchMessage, type TraceRecord } from './records.ts';
import type { TapRole } from './wire-tap.ts';

let collector: TraceCollector | undefined;

/** True if the launcher asked this process to trace. */
export function tracingRequested(): boolean {
  return process.env[TRACE_ENV] === '1';
}

/**
 * Starts the process's collector if tracing was requested (idempotent);
 * returns it, or undefined when not tracing.
 */
export function startChildTrace(role: TapRole): TraceCollector | undefined {
  if (collector || !tracingRequested() || !process.send) return collector;
  const send = (records: TraceRecord[]): void => {
    const msg: TraceBatchMessage = { type: 'trace', records };
    if (process.connected) process.send!(msg);
  };
  collector = new TraceCollector(role, send);
  process.on('message', (msg: unknown) => {
    if (!isTyped(msg) || msg.type !== 'trace.flush') return;
    collector?.flush();
    collector?.startPeriodic();
    if (process.connected) process.send!({ type: 'trace.flushed' });
  });
  return collector;
}

/** This process's collector, if tracing. */
export function childTrace(): TraceCollector | undefined {
  return collector;
}
