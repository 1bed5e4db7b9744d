/**
 * Collects trace records in a process and hands them over in batches: a
 * child process sends them to the launcher over IPC, the launcher keeps its
 * own. Batches go out every FLUSH_MS and on demand (flush()), so a child
 * that is killed loses at most its last few milliseconds of records.
 */
import { nowUs } from './clock.ts';
import type { CounterRecord, SpanRecord, TraceRecord } from './records.ts';
import { installWireTap, type TapRole } from './wire-tap.ts';
import type { ValueOf } from '../../protocol/state-machine.ts';

/** How often a collector sends what it has. */
export const FLUSH_MS = 100;
/** How often a sampler's counters are read (see sampleWith). */
export const SAMPLE_MS = 100;
/** Records kept before the oldest are dropped (a bound on memory for very long runs). */
export const MAX_PENDING = 500_000;

/** Collector lifecycle. */
export const CollectorState = {
  Collecting: 'collecting',
  Stopped: 'stopped',
} as const;
/** One of the CollectorState states. */
export type CollectorState = ValueOf<typeof CollectorState>;

/** Collects records; `send` receives each batch. */
export class TraceCollector {
  state: CollectorState = CollectorState.Collecting;
  /** Records dropped because MAX_PENDING was reached. */
  dropped = 0;
  private pending: TraceRecord[] = [];
  private readonly send: (records: TraceRecord[]) => void;
  private timer: NodeJS.Timeout | undefined;
  private sampler: NodeJS.Timeout | undefined;
  private readonly untap: () => void;

  /**
   * Starts collecting: taps every protocol connection of the process with
   * `role`. Records are handed over by flush(), and every FLUSH_MS once
   * startPeriodic() was called.
   */
  constructor(role: TapRole, send: (records: TraceRecord[]) => void) {
    this.send = send;
    this.untap = installWireTap(role, (rec) => this.add(rec));
  }

  /** Flushes every FLUSH_MS from now on (idempotent). */
  startPeriodic(): void {
    if (this.timer || this.state !== CollectorState.Collecting) return;
    this.timer = setInterval(() => this.flush(), FLUSH_MS);
    this.timer.unref();
  }

  /** Adds a record. */
  add(rec: TraceRecord): void {
    if (this.state !== CollectorState.Collecting) return;
    if (this.pending.length >= MAX_PENDING) {
      this.pending.shift();
      this.dropped++;
    }
    this.pending.push(rec);
  }

  /** Records an operation that started at `ts` (trace clock) and ends now. */
  span(name: string, cat: string, ts: number, args?: Record<string, unknown>): void {
    const rec: SpanRecord = { k: 's', pid: process.pid, name, cat, ts, dur: nowUs() - ts, ...(args ? { args } : {}) };
    this.add(rec);
  }

  /**
   * Reads `counters` now and every `everyMs` from now on, each reading one
   * CounterRecord (replaces an earlier sampler). A reading that throws is
   * skipped: sampling must never disturb the process it observes.
   */
  sampleWith(counters: () => Record<string, number>, everyMs = SAMPLE_MS): void {
    if (this.state !== CollectorState.Collecting) return;
    if (this.sampler) clearInterval(this.sampler);
    const sample = (): void => {
      let values: Record<string, number>;
      try {
        values = counters();
      } catch {
        return;
      }
      const rec: CounterRecord = { k: 'c', pid: process.pid, ts: nowUs(), values };
      this.add(rec);
    };
    sample();
    this.sampler = setInterval(sample, everyMs);
    this.sampler.unref();
  }

  /** Sends everything collected so far. */
  flush(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.send(batch);
  }

  /** Flushes and stops collecting. Idempotent. */
  stop(): void {
    if (this.state === CollectorState.Stopped) return;
    this.flush();
    this.state = CollectorState.Stopped;
    if (this.timer) clearInterval(this.timer);
    if (this.sampler) clearInterval(this.sampler);
    this.untap();
  }
}
