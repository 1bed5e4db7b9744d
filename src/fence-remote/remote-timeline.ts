/**
 * An imported timeline (observer side): the owner's timeline page mapped
 * read-only, the event channel bound to the owner's port, and the imported
 * points still pending.
 *
 * No lost wake-ups: a point is registered first and the page checked right
 * after (import), and every event re-reads the page, so an advance that
 * happened before a point was registered is seen by the check, and one that
 * happens after it is followed by an event. The check reads the seqno, then
 * the slot statuses the seqno covers (the owner stored them first).
 */
import { TimelineImportMachine, TimelineImportState } from '../../protocol/machines/fence.ts';
import { MachineState } from '../../protocol/state-machine.ts';
import { isErrno } from '../fence/errno.ts';
import { allocateFenceContexts } from '../fence/fence-context.ts';
import { FENCE_ERR_CLOSED, FENCE_ERR_PROTOCOL } from '../fence/errno.ts';
import { FenceRemoteError } from '../guest/errors.ts';
import { RemoteFence, type RemoteFenceSource } from './remote-fence.ts';
import { PageState, type TimelinePageReader } from './timeline-page.ts';
import { firstAtOrAfter } from './seqno-order.ts';

/** Construction options of a {@link RemoteTimeline}. */
export interface RemoteTimelineOptions {
  readonly owner: number;
  readonly tl: number;
  readonly name: string;
  readonly reader: TimelinePageReader;
  /** Returns slot counts to the owner (batched by the caller). */
  readonly release: (slots: readonly number[]) => void;
}

/** Counters of one import. */
export interface RemoteTimelineStats {
  /** Page checks. */
  polls: number;
  /** Points signalled through the page. */
  signalled: number;
  /** Points signalled with an error (from the page or forced). */
  errored: number;
  /** Points whose page entry was inconsistent (-EPROTO). */
  protocolErrors: number;
}

/** An imported timeline. */
export class RemoteTimeline implements RemoteFenceSource {
  readonly owner: number;
  readonly tl: number;
  readonly name: string;
  readonly context: number;
  readonly timelineName: string;
  readonly #reader: TimelinePageReader;
  readonly #release: (slots: readonly number[]) => void;
  /** Lifecycle (SPEC.md 11A.4): made once its import is set up, so it starts mapped. */
  readonly #lifecycle = new MachineState(TimelineImportMachine, TimelineImportState.Mapped);
  // Pending imported points in seqno order, one per seqno, with the slot counts each holds.
  #pending: RemoteFence[] = [];
  readonly #bySeqno = new Map<number, RemoteFence>();
  readonly #holds = new Map<RemoteFence, number[]>();
  #polling = false;
  #lastValue = 0;
  readonly #stats: RemoteTimelineStats = { polls: 0, signalled: 0, errored: 0, protocolErrors: 0 };

  constructor(options: RemoteTimelineOptions) {
    this.owner = options.owner;
    this.tl = options.tl;
    this.name = options.name;
    this.timelineName = `${options.name}@d${options.owner}`;
    this.context = allocateFenceContexts(1);
    this.#reader = options.reader;
    this.#release = options.release;
  }

  get state(): TimelineImportState {
    return this.#lifecycle.state;
  }

  /** Imported points still pending. */
  get pendingPoints(): number {
    return this.#pending.length;
  }

  /** Slot counts held. */
  get holdCount(): number {
    let n = 0;
    for (const slots of this.#holds.values()) n += slots.length;
    return n;
  }

  /** The owner's last signalled seqno, as the page says now (the last one read, once finalised). */
  get value(): number {
    if (this.#lifecycle.state === TimelineImportState.Mapped) this.#lastValue = this.#reader.seqno();
    return this.#lastValue;
  }

  /** Counters. */
  stats(): RemoteTimelineStats {
    return { ...this.#stats };
  }

  /**
   * Checks a pending reference before anything is imported: the slot must
   * exist and be tagged with the point's seqno (the owner tags it before
   * exporting).
   * @throws FenceRemoteError ERR_BAD_ARGUMENT, ERR_STATE when finalised
   */
  checkRef(seqno: number, slot: number): void {
    if (this.#lifecycle.state !== TimelineImportState.Mapped) throw new FenceRemoteError('ERR_STATE', `timeline ${this.timelineName} is closed`);
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.#reader.slotCount) {
      throw new FenceRemoteError('ERR_BAD_ARGUMENT', `slot ${slot} is outside the page's ${this.#reader.slotCount} slots`);
    }
    const { tag } = this.#reader.readSlot(slot);
    if (tag !== seqno) throw new FenceRemoteError('ERR_BAD_ARGUMENT', `slot ${slot} is tagged ${tag}, not seqno ${seqno}`);
  }

  /**
   * Imports a pending point with one slot count (after {@link checkRef}).
   * The same pending point always yields the same fence. Call {@link poll}
   * once all references of a message are imported.
   */
  importPending(seqno: number, slot: number): RemoteFence {
    let fence = this.#bySeqno.get(seqno);
    if (fence === undefined) {
      fence = new RemoteFence(this.owner, this, this.tl, seqno);
      this.#bySeqno.set(seqno, fence);
      this.#pending.splice(firstAtOrAfter(this.#pending, seqno), 0, fence);
      this.#holds.set(fence, []);
    }
    this.#holds.get(fence)!.push(slot);
    return fence;
  }

  /** A point exported already signalled with `status`: a signalled fence on this timeline's context. */
  importSignalled(seqno: number, status: number): RemoteFence {
    const pending = this.#bySeqno.get(seqno);
    if (pending !== undefined) {
      this.poll();
      if (pending.testSignaledFlag()) return pending;
    }
    const f = new RemoteFence(this.owner, this, this.tl, seqno);
    if (status < 0) f.setError(status);
    f.signal();
    return f;
  }

  /**
   * Reads the page and signals every pending point it has passed (all of
   * them if the page is closed), each with the status in its slot. Returns
   * their slot counts to the owner.
   */
  poll(): void {
    if (this.#lifecycle.state !== TimelineImportState.Mapped || this.#polling) return;
    this.#polling = true;
    try {
      this.#stats.polls++;
      const done = this.#takePassed();
      const released: number[] = [];
      for (const [fence] of done) {
        released.push(...(this.#holds.get(fence) ?? []));
        this.#holds.delete(fence);
      }
      this.#signalAll(done);
      if (released.length > 0) this.#release(released);
    } finally {
      this.#polling = false;
    }
  }

  /**
   * Ends the import: a last page check, then every point still pending
   * signals with its slot's status if the owner wrote one, else with
   * `status`. No slot counts are returned (the owner drops them itself, or
   * is gone). Idempotent.
   * @returns how many points signalled with an error because of this
   */
  finalize(status: number): number {
    if (this.#lifecycle.state !== TimelineImportState.Mapped) return 0;
    let errored = 0;
    this.#polling = true;
    try {
      const done = this.#takePassed();
      for (const fence of this.#pending) {
        const slots = this.#holds.get(fence) ?? [];
        const final = slots.length > 0 ? this.#slotStatus(fence, slots[0]!, false) : 0;
        done.push([fence, final !== 0 ? final : status]);
      }
      this.#pending = [];
      this.#bySeqno.clear();
      this.#holds.clear();
      this.#lifecycle.apply('torn-down');
      for (const [, s] of done) if (s < 0) errored++;
      this.#signalAll(done);
    } finally {
      this.#polling = false;
    }
    return errored;
  }

  // Removes the points the page has passed from the pending list; pairs each with its status.
  #takePassed(): Array<[RemoteFence, number]> {
    const value = this.#reader.seqno();
    this.#lastValue = value;
    const closed = this.#reader.state() === PageState.Closed;
    let n = 0;
    while (n < this.#pending.length && (closed || this.#pending[n]!.seqno <= value)) n++;
    if (n === 0) return [];
    const taken = this.#pending.slice(0, n);
    this.#pending = this.#pending.slice(n);
    const out: Array<[RemoteFence, number]> = [];
    for (const fence of taken) {
      this.#bySeqno.delete(fence.seqno);
      const slots = this.#holds.get(fence) ?? [];
      const passed = fence.seqno <= value;
      const status = slots.length > 0 ? this.#slotStatus(fence, slots[0]!, passed) : FENCE_ERR_PROTOCOL;
      out.push([fence, status !== 0 ? status : this.#closeStatus()]);
    }
    return out;
  }

  // The final status in a slot: 1, an errno, or 0 (not written yet). A page that says the
  // point passed but whose slot is not final, or a slot tagged for another point, is -EPROTO.
  #slotStatus(fence: RemoteFence, slot: number, passed: boolean): number {
    const { tag, status } = this.#reader.readSlot(slot);
    if (tag !== fence.seqno || (status !== 0 && status !== 1 && !isErrno(status)) || (passed && status === 0)) {
      this.#stats.protocolErrors++;
      return FENCE_ERR_PROTOCOL;
    }
    return status;
  }

  #closeStatus(): number {
    const s = this.#reader.closeStatus();
    return isErrno(s) ? s : FENCE_ERR_CLOSED;
  }

  #signalAll(done: ReadonlyArray<[RemoteFence, number]>): void {
    for (const [fence, status] of done) {
      if (status < 0) {
        fence.setError(status);
        this.#stats.errored++;
      } else {
        this.#stats.signalled++;
      }
      fence.signal();
    }
  }

}
