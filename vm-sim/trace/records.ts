/**
 * Trace records: what each process of a run collects and sends to the
 * launcher over IPC (structured clone or JSON), and what the trace and
 * Mermaid writers consume. They are plain objects with short keys because a
 * long run produces tens of thousands of them.
 */

/**
 * One protocol frame sent or received by one process.
 *
 * `flow` identifies the hop this frame travels on, the same string in the
 * sender and the receiver: frames on one WebSocket arrive in the order they
 * were sent, so the k-th frame a domain sends is the k-th frame the backend
 * receives on that domain's connection ("u:<domid>:<k>"), and the j-th frame
 * the backend sends on it is the j-th the domain receives ("d:<domid>:<j>").
 * `via` is set on a frame the backend forwards: the flow of the frame it
 * forwards, so that one message routed A -> hv -> B is one flow.
 */
export interface WireRecord {
  readonly k: 'w';
  /** Clock (trace/clock.ts), microseconds. */
  readonly ts: number;
  readonly pid: number;
  readonly dir: 'in' | 'out';
  /** Connection within the process ("c1", "c2", ...). */
  readonly conn: string;
  /** The domain the connection speaks for (undefined before HELLO is seen). */
  readonly dom: number | undefined;
  readonly flow: string;
  readonly via?: string;
  readonly kind: 'req' | 'res' | 'err' | 'evt';
  readonly type: string;
  readonly id: number;
  readonly src?: number;
  readonly dst?: number;
  /** Error code of an err frame. */
  readonly code?: string;
  /** The body's key fields (key-fields.ts), when it has any: "buf 1:3, frame 12". */
  readonly info?: string;
}

/** One operation: a command, a scenario step, a drawing or a check. */
export interface SpanRecord {
  readonly k: 's';
  readonly pid: number;
  readonly name: string;
  /** Category: 'cmd' (VM command), 'step' (scenario step), 'sim' (drawing, checking), 'bench'. */
  readonly cat: string;
  readonly ts: number;
  readonly dur: number;
  readonly args?: Record<string, unknown>;
}

/**
 * A sample of a process's counters at one time: each entry of `values` is
 * one counter track of the process (e.g. "grants in use dom1"), drawn as a
 * Chrome "C" event.
 */
export interface CounterRecord {
  readonly k: 'c';
  readonly pid: number;
  /** Clock (trace/clock.ts), microseconds. */
  readonly ts: number;
  readonly values: Readonly<Record<string, number>>;
}

/**
 * Where an exported buffer's pages are, as its exporter saw it: recorded
 * when the export is first seen and after each move (a new generation).
 */
export interface LayoutRecord {
  readonly k: 'l';
  readonly pid: number;
  readonly ts: number;
  /** "dom:cnt" of the buffer id. */
  readonly hid: string;
  /** The importer. */
  readonly target: number;
  /** Moves so far (0: where it was exported). */
  readonly gen: number;
  /** Bytes of data. */
  readonly size: number;
  /** Runs of adjacent pages in buffer order: [first frame, pages]. */
  readonly runs: ReadonlyArray<readonly [number, number]>;
  /** Directory format and the frames of its pages. */
  readonly dirFormat: string;
  readonly dirFrames: readonly number[];
}

/** Any record. */
export type TraceRecord = WireRecord | SpanRecord | CounterRecord | LayoutRecord;

/** The IPC message a child sends with a batch of records. */
export interface TraceBatchMessage {
  type: 'trace';
  records: TraceRecord[];
}

/** Asks a child to send what it has collected now (hv: an IPC message; VMs also have the trace.flush command). */
export interface TraceFlushMessage {
  type: 'trace.flush';
}

/** A child's answer to trace.flush, sent after the last batch. */
export interface TraceFlushedMessage {
  type: 'trace.flushed';
}

/** Environment variable that turns collection on in a child ("1"). */
export const TRACE_ENV = 'HDMABUF_TRACE';
