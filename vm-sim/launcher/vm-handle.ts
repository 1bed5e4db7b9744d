/**
 * The launcher's handle on one VM of a run: its process (commands over
 * IPC), and a log of the events it sent, so that a scenario can wait for an
 * event that may already have happened ("wait for peerDied") without racing
 * it. Each wait consumes the first matching event not yet consumed.
 */
import type { ChildExit } from '../process/spawn/child.ts';
import type { VmEventMessage } from '../process/spawn/ipc.ts';
import type { VmProcess } from '../process/spawn/spawn-vm.ts';
import type { ValueOf } from '../../protocol/state-machine.ts';

/** Most events kept per VM (the oldest are dropped; waits on them then time out). */
export const MAX_EVENT_LOG = 10_000;

/** VM handle states. */
export const VmState = {
  Running: 'running',
  /** Killed on purpose by the scenario (a crash). */
  Killed: 'killed',
  Exited: 'exited',
} as const;
/** One of the VmState states. */
export type VmState = ValueOf<typeof VmState>;

interface Logged {
  readonly seq: number;
  readonly event: VmEventMessage;
  consumed: boolean;
}

interface Waiter {
  readonly name: string;
  readonly match: (data: Record<string, unknown>) => boolean;
  readonly resolve: (data: Record<string, unknown>) => void;
}

/** One VM of a run. */
export class VmHandle {
  readonly name: string;
  readonly domid: number;
  readonly memPages: number;
  readonly process: VmProcess;
  state: VmState = VmState.Running;
  private readonly log: Logged[] = [];
  private seq = 0;
  private readonly waiters = new Set<Waiter>();

  constructor(name: string, memPages: number, vm: VmProcess) {
    this.name = name;
    this.domid = vm.domid;
    this.memPages = memPages;
    this.process = vm;
    vm.onEvent((e) => this.onEvent(e));
    void vm.exited.then(() => { if (this.state === VmState.Running) this.state = VmState.Exited; });
  }

  get pid(): number {
    return this.process.pid;
  }

  /** True until the process exited. */
  get alive(): boolean {
    return this.process.child.exit === undefined;
  }

  /** Runs a VM command (see VmProcess.call). */
  call<T = Record<string, unknown>>(cmd: string, args: unknown = {}, timeoutMs = 60_000): Promise<T> {
    return this.process.call<T>(cmd, args, timeoutMs);
  }

  /** Listens to every event as it comes (progress lines). */
  listen(listener: (e: VmEventMessage) => void): () => void {
    return this.process.onEvent(listener);
  }

  /** Kills the process (a crash) and resolves with its exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<ChildExit> {
    this.state = VmState.Killed;
    this.process.kill(signal);
    return this.process.exited;
  }

  /**
   * Resolves with the data of the first event `name` not yet consumed that
   * satisfies `match`, from the log or when it comes; rejects with
   * ERR_TIMEOUT after timeoutMs.
   */
  waitEvent(name: string, match: (data: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>> {
    const found = this.log.find((l) => !l.consumed && l.event.name === name && match(l.event.data as Record<string, unknown>));
    if (found) {
      found.consumed = true;
      return Promise.resolve(found.event.data as Record<string, unknown>);
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        name, match,
        resolve: (data) => { clearTimeout(timer); this.waiters.delete(waiter); resolve(data); },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(Object.assign(new Error(`${this.name}: no ${name} event within ${timeoutMs} ms`), { code: 'ERR_TIMEOUT' }));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  private onEvent(event: VmEventMessage): void {
    const entry: Logged = { seq: ++this.seq, event, consumed: false };
    if (event.name === 'progress') return; // progress is shown, never waited for
    for (const w of this.waiters) {
      if (w.name === event.name && w.match(event.data as Record<string, unknown>)) {
        entry.consumed = true;
        w.resolve(event.data as Record<string, unknown>);
        break;
      }
    }
    this.log.push(entry);
    if (this.log.length > MAX_EVENT_LOG) this.log.shift();
  }
}
