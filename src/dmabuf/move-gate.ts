/**
 * The ordering between a buffer's moves and its uses: what Linux gets from
 * the reservation object's lock (dma_resv) and from pinning.
 *
 * Uses of two kinds hold a buffer where it is:
 * - pins: an explicit pin (a local user's, or an importer's forwarded
 *   `pin`), and every mapping of a static attachment (a device holding a
 *   scatter-gather table cannot follow a move: Linux pins for it too);
 * - CPU access: a begin_cpu_access not yet ended (local, or an importer's
 *   forwarded one).
 *
 * A move starts only when neither is held, and runs alone: while a move
 * runs, a new pin, CPU access or static mapping waits for it to finish (so
 * it sees the new location). A move that is still waiting does NOT hold
 * back new uses. That costs fairness (a stream of overlapping CPU accesses
 * with no gap between them could keep a move waiting), but it cannot
 * deadlock: an importer's end_cpu_access queued behind a new
 * begin_cpu_access (remote-sync operations of one buffer are applied in
 * order) still reaches the exporter. Moves run one at a time.
 *
 * Its states are a declared machine (protocol/machines/move-gate.ts, drawn
 * in SPEC.md 11.8.4); the count of waiting moves only says which event a
 * move's end or give-up is.
 */
import { ProtocolError } from '../../protocol/errors.ts';
import { MoveGateMachine, MoveGateState } from '../../protocol/machines/move-gate.ts';

/** A use that holds the buffer where it is. */
export type MoveBlockingUse = 'pin' | 'cpu' | 'static-map';

/** Why a move cannot start now. */
export type MoveBlocker = 'pinned' | 'cpu-access' | 'moving';

/** How a move waits to start. */
export interface MoveWaitOptions {
  /** Wait for pins and CPU accesses to go (default true). false: fail at once, ERR_PINNED when pinned, ERR_BUSY otherwise. */
  wait?: boolean;
  /** Give up waiting after this long (ERR_TIMEOUT). Default: no limit. */
  timeoutMs?: number;
}

/** What a started move learned while it waited. */
export interface MoveStart {
  /** Milliseconds it waited before it could start. */
  waitedMs: number;
  /** Every reason it had to wait for, in the order met (empty if it started at once). */
  waitedFor: MoveBlocker[];
}

/** The move gate of one buffer. */
export class MoveGate {
  private readonly holds: Record<MoveBlockingUse, number> = { pin: 0, cpu: 0, 'static-map': 0 };
  private readonly machine = MoveGateMachine.start();
  /** Moves that called beginMove and have not started or given up. */
  private waitingMoves = 0;
  private wakers: Array<() => void> = [];

  /** Where the buffer stands. */
  get state(): MoveGateState {
    return this.machine.state;
  }

  /** True while a move runs. */
  private get moving(): boolean {
    return this.machine.is(MoveGateState.Moving);
  }

  /** Uses held now, by kind. */
  get held(): Readonly<Record<MoveBlockingUse, number>> {
    return { ...this.holds };
  }

  /** Pins held now (explicit pins and static mappings). */
  get pins(): number {
    return this.holds.pin + this.holds['static-map'];
  }

  /** What keeps a move from starting now, if anything. */
  blocker(): MoveBlocker | undefined {
    if (this.moving) return 'moving';
    if (this.pins > 0) return 'pinned';
    if (this.holds.cpu > 0) return 'cpu-access';
    return undefined;
  }

  /** Takes a use, after any running move completed. */
  async enter(kind: MoveBlockingUse): Promise<void> {
    while (this.moving) await this.changed();
    this.holds[kind]++;
  }

  /** Drops a use; a waiting move re-checks. */
  leave(kind: MoveBlockingUse): void {
    if (this.holds[kind] === 0) throw new ProtocolError('ERR_BAD_ARGUMENT', `no ${kind} use is held`);
    this.holds[kind]--;
    this.wake();
  }

  /** Waits until no move runs (for operations that only need a stable location for an instant). */
  async settled(): Promise<void> {
    while (this.moving) await this.changed();
  }

  /**
   * Starts a move: waits (unless told not to) until no move runs and no pin
   * or CPU access is held, then marks the buffer moving. Pair with endMove.
   */
  async beginMove(opts: MoveWaitOptions = {}): Promise<MoveStart> {
    const t0 = performance.now();
    const waitedFor: MoveBlocker[] = [];
    const deadline = opts.timeoutMs === undefined ? undefined : t0 + opts.timeoutMs;
    this.waitingMoves++;
    if (this.machine.is(MoveGateState.Idle)) this.machine.apply('move-requested');
    let started = false;
    try {
      for (;;) {
        const b = this.blocker();
        if (b === undefined) break;
        if (waitedFor[waitedFor.length - 1] !== b) waitedFor.push(b);
        if (opts.wait === false) {
          throw b === 'pinned'
            ? new ProtocolError('ERR_PINNED', `the buffer is pinned (${this.holds.pin} pin(s), ${this.holds['static-map']} static mapping(s))`)
            : new ProtocolError('ERR_BUSY', b === 'moving' ? 'the buffer is already moving' : `${this.holds.cpu} CPU access(es) in progress`);
        }
        const left = deadline === undefined ? undefined : deadline - performance.now();
        if (left !== undefined && left <= 0) {
          throw new ProtocolError('ERR_TIMEOUT', `the buffer could not move within ${opts.timeoutMs} ms (waiting for: ${b})`);
        }
        await this.changed(left);
      }
      this.machine.apply('move-starts');
      started = true;
    } finally {
      this.waitingMoves--;
      if (!started && this.waitingMoves === 0 && this.machine.is(MoveGateState.MoveWaiting)) this.machine.apply('moves-given-up');
    }
    return { waitedMs: performance.now() - t0, waitedFor };
  }

  /** Ends a move; waiting uses go ahead. */
  endMove(): void {
    this.machine.apply(this.waitingMoves > 0 ? 'move-ends-another-waits' : 'move-ends');
    this.wake();
  }

  /** Resolves at the next change (or after `ms`). */
  private changed(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        if (timer) clearTimeout(timer);
        resolve();
      };
      this.wakers.push(done);
      if (ms !== undefined) {
        timer = setTimeout(() => {
          const at = this.wakers.indexOf(done);
          if (at >= 0) this.wakers.splice(at, 1);
          resolve();
        }, ms);
      }
    });
  }

  private wake(): void {
    const wakers = this.wakers;
    this.wakers = [];
    for (const w of wakers) w();
  }
}
