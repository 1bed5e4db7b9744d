/**
 * Starts one VM (vm-sim/vm-main.ts) as a child process and talks to it: the
 * VM counts as started when it reports ready (its kernel booted and its
 * commands are registered); commands are calls over the IPC channel whose
 * errors come back with their code and message.
 */
import { ManagedChild, describeExit, type ChildExit } from './child.ts';
import { ChildCallError, type CallMessage, type VmEventMessage, type VmReadyMessage } from './ipc.ts';
import { VM_MAIN } from './paths.ts';
import { VM_CONFIG_ENV, type VmConfig } from './vm-config.ts';

/** Options of spawnVm. */
export interface SpawnVmOptions extends VmConfig {
  readyTimeoutMs?: number;
  echoOutput?: boolean;
  /** 'pipe' (default) captures the child's output; 'inherit' shares ours. */
  output?: 'pipe' | 'inherit';
  /** Extra environment. */
  env?: NodeJS.ProcessEnv;
}

interface PendingCall {
  cmd: string;
  resolve: (value: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

/** A running VM process. */
export class VmProcess {
  readonly child: ManagedChild<VmReadyMessage>;
  readonly domid: number;
  readonly name: string;
  private readonly pending = new Map<number, PendingCall>();
  private nextId = 1;
  private readonly eventListeners = new Set<(e: VmEventMessage) => void>();

  constructor(child: ManagedChild<VmReadyMessage>, domid: number, name: string) {
    this.child = child;
    this.domid = domid;
    this.name = name;
    child.on('message', (msg: Record<string, unknown>) => this.onMessage(msg));
    child.on('exit', (exit: ChildExit) => this.failAll(exit));
  }

  get pid(): number {
    return this.child.pid;
  }

  /** Resolves when the process has exited. */
  get exited(): Promise<ChildExit> {
    return this.child.exited;
  }

  /**
   * Runs a command in the VM and resolves with its result. Rejects with
   * ChildCallError: the VM's error code, or ERR_CHILD_EXITED if the VM died
   * first (details carry its exit code and signal), or ERR_TIMEOUT.
   */
  call<T = unknown>(cmd: string, args: unknown = {}, timeoutMs = 30_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.child.exit) {
        reject(this.exitedError(cmd, this.child.exit));
        return;
      }
      const id = this.nextId++;
      const entry: PendingCall = { cmd, resolve: resolve as (v: unknown) => void, reject, timer: undefined };
      if (timeoutMs > 0) {
        entry.timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new ChildCallError(cmd, { code: 'ERR_TIMEOUT', message: `${this.name}: no result within ${timeoutMs} ms` }));
        }, timeoutMs);
      }
      this.pending.set(id, entry);
      const msg: CallMessage = { type: 'call', id, cmd, args };
      if (!this.child.send(msg)) {
        this.settle(id);
        reject(new ChildCallError(cmd, { code: 'ERR_CHILD_EXITED', message: `${this.name}: IPC channel is closed` }));
      }
    });
  }

  /** Listens to the VM's unsolicited events. Returns a function that removes the listener. */
  onEvent(listener: (e: VmEventMessage) => void): () => void {
    this.eventListeners.add(listener);
    return () => { this.eventListeners.delete(listener); };
  }

  /** Sends a signal (e.g. SIGKILL to simulate a crash). */
  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    return this.child.kill(signal);
  }

  /** Asks the VM to shut its kernel down and exit; resolves with its exit. Falls back to reaping. */
  async shutdown(graceMs = 3000): Promise<ChildExit> {
    if (!this.child.exit) {
      try {
        await this.call('kernel.shutdown', {}, graceMs);
      } catch {
        // Already dying, or wedged: reaping below settles it.
      }
    }
    return this.child.reap(graceMs);
  }

  /**
   * The graceful half of shutdown(): asks the VM to shut down (kernel.shutdown;
   * SIGTERM if it cannot answer) and waits up to graceMs for it to exit.
   * Never kills it. Resolves true if it exited.
   */
  async shutdownGracefully(graceMs = 3000): Promise<boolean> {
    if (this.child.exit) return true;
    const deadline = performance.now() + graceMs;
    try {
      await this.call('kernel.shutdown', {}, graceMs);
    } catch {
      // Wedged or already dying: SIGTERM runs the same cascade in vm-main.
      this.child.kill('SIGTERM');
    }
    return this.child.exitWithin(Math.max(0, deadline - performance.now()));
  }

  private onMessage(msg: Record<string, unknown>): void {
    if (msg.type === 'event') {
      for (const l of [...this.eventListeners]) l(msg as unknown as VmEventMessage);
      return;
    }
    if (msg.type !== 'result' || typeof msg.id !== 'number') return;
    const entry = this.settle(msg.id);
    if (!entry) return;
    if (msg.ok === true) entry.resolve(msg.value);
    else entry.reject(new ChildCallError(entry.cmd, msg.error as { code: string; message: string }));
  }

  private settle(id: number): PendingCall | undefined {
    const entry = this.pending.get(id);
    if (!entry) return undefined;
    this.pending.delete(id);
    if (entry.timer) clearTimeout(entry.timer);
    return entry;
  }

  private failAll(exit: ChildExit): void {
    for (const [id, entry] of [...this.pending]) {
      this.settle(id);
      entry.reject(this.exitedError(entry.cmd, exit));
    }
  }

  private exitedError(cmd: string, exit: ChildExit): ChildCallError {
    return new ChildCallError(cmd, {
      code: 'ERR_CHILD_EXITED',
      message: `${this.name} exited (${describeExit(exit)})`,
      details: { code: exit.code, signal: exit.signal },
    });
  }
}

/** Forks vm-main for one domain and waits until it reports ready. */
export async function spawnVm(options: SpawnVmOptions): Promise<VmProcess> {
  const name = options.name ?? `dom${options.domid}`;
  const config: VmConfig = {
    url: options.url, domid: options.domid, token: options.token, ramPath: options.ramPath,
    grantTablePath: options.grantTablePath, memPages: options.memPages, maxGrantFrames: options.maxGrantFrames, name,
    ...(options.modules ? { modules: options.modules } : {}),
    ...(options.maxVersion !== undefined ? { maxVersion: options.maxVersion } : {}),
  };
  const child = await ManagedChild.start<VmReadyMessage>({
    name: `vm ${name}`,
    script: VM_MAIN,
    // Non-secret identification only: the token travels in the environment, not in ps output.
    args: ['--domid', String(options.domid), '--name', name],
    env: { ...options.env, [VM_CONFIG_ENV]: JSON.stringify(config) },
    serialization: 'advanced',
    ...(options.readyTimeoutMs !== undefined ? { readyTimeoutMs: options.readyTimeoutMs } : {}),
    ...(options.echoOutput !== undefined ? { echoOutput: options.echoOutput } : {}),
    ...(options.output !== undefined ? { output: options.output } : {}),
    isReady: (msg) => msg.type === 'ready' && msg.domid === options.domid,
  });
  return new VmProcess(child, options.domid, name);
}
