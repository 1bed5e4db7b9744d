/**
 * The NEW_IMPORT event queue of an importer (the original's
 * HYPER_DMABUF_NEW_IMPORT, read from the device): one event per EXPORT
 * received, including private-data updates.
 *
 * Bounded. Overflow rule: when the queue is full the OLDEST event is
 * discarded (as in the original), the queue's `dropped` total grows, and the
 * next event read carries `droppedBefore`, the number discarded since the
 * previous read, so a reader always learns that it missed something. Each
 * event holds its own copy of the private data (the original pointed into
 * the import, which a later update could free under the reader).
 */
import { ProtocolError } from '../../protocol/errors.ts';
import type { AccessMode } from '../../protocol/messages/dmabuf.ts';
import type { Hid } from './hid.ts';
import type { ValueOf } from '../../protocol/state-machine.ts';

/** One NEW_IMPORT event. */
export interface NewImportEvent {
  readonly type: 'new_import';
  readonly hid: Hid;
  readonly exporter: number;
  /** Bytes of data. */
  readonly size: number;
  readonly nents: number;
  readonly access: AccessMode;
  /** True for a private-data update of an import already announced. */
  readonly update: boolean;
  /** A copy of the private data. */
  readonly priv: Uint8Array;
  /** Events discarded (overflow) since the previous read; set when read. */
  droppedBefore: number;
}

/** Options of a blocking read. */
export interface ReadEventOptions {
  /** Give up after this long with ERR_TIMEOUT (default: wait forever). */
  timeoutMs?: number;
  /** Give up when aborted. */
  signal?: AbortSignal;
}

interface Waiter {
  resolve: (ev: NewImportEvent) => void;
  reject: (e: Error) => void;
}

/** Queue lifecycle. */
export const EventQueueState = {
  Open: 'open',
  Closed: 'closed',
} as const;
/** One of the EventQueueState states. */
export type EventQueueState = ValueOf<typeof EventQueueState>;

/** A bounded queue with blocking and non-blocking reads. */
export class ImportEventQueue {
  readonly depth: number;
  private readonly events: NewImportEvent[] = [];
  private readonly waiters: Waiter[] = [];
  private droppedTotal = 0;
  private droppedSinceRead = 0;
  private stateValue: EventQueueState = EventQueueState.Open;

  constructor(depth: number) {
    this.depth = depth;
  }

  /** Events waiting. */
  get length(): number {
    return this.events.length;
  }

  /** Events discarded by overflow since the queue was made. */
  get dropped(): number {
    return this.droppedTotal;
  }

  get state(): EventQueueState {
    return this.stateValue;
  }

  /** Queues an event, or hands it straight to the oldest blocked reader. */
  push(event: NewImportEvent): void {
    if (this.stateValue !== EventQueueState.Open) return;
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter.resolve(this.stamp(event));
      return;
    }
    if (this.events.length >= this.depth) {
      this.events.shift();
      this.droppedTotal++;
      this.droppedSinceRead++;
    }
    this.events.push(event);
  }

  /** Non-blocking read: the oldest event, or undefined (the original's -EAGAIN). */
  tryRead(): NewImportEvent | undefined {
    const ev = this.events.shift();
    return ev ? this.stamp(ev) : undefined;
  }

  /** Blocking read: the oldest event, waiting for one if needed. */
  read(options: ReadEventOptions = {}): Promise<NewImportEvent> {
    const ev = this.tryRead();
    if (ev) return Promise.resolve(ev);
    if (this.stateValue !== EventQueueState.Open) return Promise.reject(new ProtocolError('ERR_CLOSED', 'the event queue is closed'));
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => finish(new ProtocolError('ERR_CLOSED', 'event read aborted'));
      const finish = (err: Error | undefined, value?: NewImportEvent): void => {
        if (timer) clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        if (err) reject(err);
        else resolve(value!);
      };
      const waiter: Waiter = { resolve: (v) => finish(undefined, v), reject: (e) => finish(e) };
      if (options.signal?.aborted) { reject(new ProtocolError('ERR_CLOSED', 'event read aborted')); return; }
      options.signal?.addEventListener('abort', onAbort, { once: true });
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() => finish(new ProtocolError('ERR_TIMEOUT', `no NEW_IMPORT event within ${options.timeoutMs} ms`)), options.timeoutMs);
      }
      this.waiters.push(waiter);
    });
  }

  /** Closes the queue: blocked readers get ERR_CLOSED, queued events are discarded. Idempotent. */
  close(): void {
    this.stateValue = EventQueueState.Closed;
    this.events.length = 0;
    for (const w of this.waiters.splice(0)) w.reject(new ProtocolError('ERR_CLOSED', 'the event queue is closed'));
  }

  private stamp(ev: NewImportEvent): NewImportEvent {
    ev.droppedBefore = this.droppedSinceRead;
    this.droppedSinceRead = 0;
    return ev;
  }
}
