/**
 * A child process of the launcher: forked with an IPC channel, started only
 * when it says it is ready (not when it is spawned), and always reaped.
 *
 * Every child is registered until it exits; reapAll() ends them all
 * (SIGTERM, then SIGKILL after a grace period) and waits for every exit, so
 * a test's teardown or a launcher's exit leaves no process behind whatever
 * happened. Children themselves exit when the IPC channel disconnects, which
 * covers a launcher that died without reaping.
 */
import { fork, type ChildProcess, type Serializable } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { isTyped } from './ipc.ts';
import type { ValueOf } from '../../../protocol/state-machine.ts';

/** Child lifecycle. */
export const ChildState = {
  Starting: 'starting',
  Ready: 'ready',
  Exited: 'exited',
} as const;
/** One of the ChildState states. */
export type ChildState = ValueOf<typeof ChildState>;

/** How a child ended. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Options of startChild. */
export interface StartChildOptions<R> {
  /** Label in errors and logs (e.g. "hv", "vm dom2"). */
  name: string;
  /** Module to fork (a .ts file: run through tsx). */
  script: string;
  args?: string[];
  /** Extra environment, merged over the launcher's. */
  env?: NodeJS.ProcessEnv;
  /** Node options for the child; default loads tsx. */
  execArgv?: string[];
  /** 'advanced' lets typed arrays cross the channel. */
  serialization?: 'json' | 'advanced';
  /** How long the child has to report ready (default 20 s). */
  readyTimeoutMs?: number;
  /** Recognises the ready message. */
  isReady: (msg: Record<string, unknown>) => boolean;
  /** Copy the child's stdout/stderr to ours as they come (default: only kept for diagnostics). */
  echoOutput?: boolean;
  /** 'pipe' (default): stdout/stderr are captured; 'inherit': the child writes to ours directly. */
  output?: 'pipe' | 'inherit';
}

const OUTPUT_TAIL_BYTES = 16 * 1024;

/**
 * HDMABUF_CHILD_CPU_PROF=DIR: every child writes a V8 CPU profile into DIR
 * when it exits (node refuses --cpu-prof in NODE_OPTIONS, so it is passed
 * here); HDMABUF_CHILD_CPU_PROF_INTERVAL sets the sampling interval in µs.
 */
function cpuProfileArgs(): string[] {
  const dir = process.env.HDMABUF_CHILD_CPU_PROF;
  if (!dir) return [];
  const interval = process.env.HDMABUF_CHILD_CPU_PROF_INTERVAL;
  return ['--cpu-prof', `--cpu-prof-dir=${dir}`, ...(interval ? [`--cpu-prof-interval=${interval}`] : [])];
}
const registry = new Set<ManagedChild<unknown>>();

/** A forked child process. Events: 'message' (msg), 'output' (its stdout or stderr grew), 'exit' (ChildExit). */
export class ManagedChild<R> extends EventEmitter {
  readonly name: string;
  readonly process: ChildProcess;
  readonly pid: number;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ChildExit>;
  private stateValue: ChildState = ChildState.Starting;
  private readyValue: R | undefined;
  private exitValue: ChildExit | undefined;
  private outputBuf = '';

  private constructor(name: string, child: ChildProcess, echo: boolean) {
    super();
    this.name = name;
    this.process = child;
    if (child.pid === undefined) throw new Error(`${name}: fork failed`);
    this.pid = child.pid;
    const keep = (chunk: Buffer, sink: NodeJS.WriteStream): void => {
      const text = chunk.toString();
      this.outputBuf = (this.outputBuf + text).slice(-OUTPUT_TAIL_BYTES);
      this.emit('output');
      // Lines that already start with the child's name (hv logs "[hv] ...") are not prefixed twice.
      if (echo) sink.write(text.replace(/^(?=.)/gm, (_, at: number) => (text.startsWith(`[${name}] `, at) ? '' : `[${name}] `)));
    };
    child.stdout?.on('data', (c: Buffer) => keep(c, process.stdout));
    child.stderr?.on('data', (c: Buffer) => keep(c, process.stderr));
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitValue = { code, signal };
        this.stateValue = ChildState.Exited;
        registry.delete(this as ManagedChild<unknown>);
        this.emit('exit', this.exitValue);
        resolve(this.exitValue);
      });
    });
    child.on('message', (msg: unknown) => { if (isTyped(msg)) this.emit('message', msg); });
    // A send to a child that just died raises 'error'; the exit is what matters.
    child.on('error', () => undefined);
    registry.add(this as ManagedChild<unknown>);
  }

  /** Forks the child and resolves once it reported ready; rejects (after reaping it) if it exits or times out first. */
  static async start<R>(options: StartChildOptions<R>): Promise<ManagedChild<R>> {
    const child = fork(options.script, options.args ?? [], {
      execArgv: [...(options.execArgv ?? ['--import', 'tsx']), ...cpuProfileArgs()],
      env: { ...process.env, ...options.env },
      serialization: options.serialization ?? 'json',
      stdio: options.output === 'inherit' ? ['ignore', 'inherit', 'inherit', 'ipc'] : ['ignore', 'pipe', 'pipe', 'ipc'],
      // Its own process group: Ctrl-C in a terminal signals the launcher's group only, so the launcher
      // alone decides how its children stop (the close cascade, which measures leaks first).
      detached: true,
    });
    const managed = new ManagedChild<R>(options.name, child, options.echoOutput ?? process.env.HDMABUF_CHILD_OUTPUT === '1');
    const timeoutMs = options.readyTimeoutMs ?? 20_000;
    try {
      managed.readyValue = await managed.waitFor('message', (msg) => (options.isReady(msg as Record<string, unknown>) ? msg as R : undefined), timeoutMs, {
        timedOut: `not ready within ${timeoutMs} ms`, exited: (how) => `exited before ready (${how})`,
      });
    } catch (e) {
      await managed.reap();
      throw e;
    }
    managed.stateValue = ChildState.Ready;
    return managed;
  }

  get state(): ChildState {
    return this.stateValue;
  }

  /** The ready message (after start). */
  get ready(): R {
    if (this.readyValue === undefined) throw new Error(`${this.name} is not ready`);
    return this.readyValue;
  }

  /** How it exited, once it has. */
  get exit(): ChildExit | undefined {
    return this.exitValue;
  }

  /** The last bytes it wrote to stdout and stderr. */
  get output(): string {
    return this.outputBuf;
  }

  /**
   * Resolves once the child's output (the kept tail of stdout and stderr)
   * matches `pattern`; rejects if it exits first or `timeoutMs` passes.
   */
  untilOutput(pattern: RegExp, timeoutMs: number): Promise<void> {
    return this.waitFor('output', () => (pattern.test(this.outputBuf) ? true : undefined), timeoutMs, {
      timedOut: `output did not match ${pattern} within ${timeoutMs} ms`, exited: (how) => `exited (${how}) before its output matched ${pattern}`,
    }).then(() => undefined);
  }

  /**
   * Resolves with the first value `accept` returns, called on every `event`
   * (and at once for 'output', which may already match); rejects when the child exits first or `timeoutMs`
   * passes, with the child's name, `errors`' text and its output's tail.
   */
  private waitFor<T>(event: 'message' | 'output', accept: (arg?: unknown) => T | undefined, timeoutMs: number,
    errors: { timedOut: string; exited: (how: string) => string }): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const fail = (why: string): void => { cleanup(); reject(new Error(`${this.name}: ${why}${this.outputTail()}`)); };
      const check = (arg?: unknown): void => {
        const got = accept(arg);
        if (got === undefined) return;
        cleanup();
        resolve(got);
      };
      const onExit = (exit: ChildExit): void => fail(errors.exited(describeExit(exit)));
      const timer = setTimeout(() => fail(errors.timedOut), timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off(event, check);
        this.off('exit', onExit);
      };
      this.on(event, check);
      this.on('exit', onExit);
      if (event === 'output') check();
    });
  }

  /**
   * Sends an IPC message; false if the channel is gone. (process.send's own
   * false only means its queue is long: Node still delivers the message.)
   */
  send(msg: Serializable): boolean {
    if (!this.process.connected) return false;
    try {
      this.process.send(msg);
      return true;
    } catch {
      return false;
    }
  }

  /** Sends a signal; false if it already exited. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    if (this.exitValue) return false;
    return this.process.kill(signal);
  }

  /** Resolves true once the child has exited, or false if it is still running after `ms`. */
  async exitWithin(ms: number): Promise<boolean> {
    if (this.exitValue) return true;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), ms); });
    try {
      return await Promise.race([this.exited.then(() => true as const), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends the child: SIGTERM, then SIGKILL if it has not exited within graceMs. Resolves with its exit. */
  async reap(graceMs = 3000): Promise<ChildExit> {
    if (this.exitValue) return this.exitValue;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  private outputTail(): string {
    const tail = this.outputBuf.trim();
    return tail ? `; output:\n${tail.slice(-4000)}` : '';
  }
}

/** Children started and not yet exited. */
export function liveChildren(): ReadonlyArray<ManagedChild<unknown>> {
  return [...registry];
}

/** Ends every child (SIGTERM, SIGKILL after graceMs) and waits for all exits. */
export async function reapAll(graceMs = 3000): Promise<ChildExit[]> {
  return Promise.all([...registry].map((c) => c.reap(graceMs)));
}

/** "code 0", "signal SIGKILL". */
export function describeExit(exit: ChildExit): string {
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}

/**
 * True if a process with this pid is still running. A zombie (exited, not
 * yet reaped by its parent, e.g. an orphan of a killed launcher) is not.
 */
export function isRunning(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  // Field 3, after the parenthesised command name (which may itself contain spaces or parentheses).
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}
