/**
 * The domain under test, as a child process: started with the environment of
 * Appendix B.1, ready when it prints its ready line, driven by the commands of
 * B.3 (one JSON line each way), and reaped at the end (asked with `shutdown`,
 * then SIGTERM, then SIGKILL).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { AgentCommands, AgentReply, AgentReady, DomainLaunch } from './contract.ts';
import { launchEnv } from './contract.ts';
import type { ValueOf } from '../../../protocol/state-machine.ts';

/** An error the domain answered to a command. */
export class AgentError extends Error {
  constructor(readonly code: string, message: string) { super(`${code}: ${message}`); }
}

/** Lifecycle of the process. */
const AgentState = { Starting: 'starting', Ready: 'ready', Exited: 'exited' } as const;
type AgentState = ValueOf<typeof AgentState>;

/** The running domain process. */
export class DomainAgent {
  #state: AgentState = 'starting';
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  /** The last lines of its stderr and of stdout lines that are not commands' answers, for the report. */
  readonly log: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(readonly child: ChildProcess, readonly commandLine: string) {
    this.exited = new Promise((resolve) => {
      const ended = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (this.#state === 'exited') return;
        this.#state = 'exited';
        for (const p of this.#pending.values()) p.reject(new Error(`the domain process exited (${signal ?? code}) before answering`));
        this.#pending.clear();
        resolve({ code, signal });
      };
      child.once('exit', ended);
      // A command that could not be started (ENOENT, EACCES) never exits: it ended before it began.
      child.once('error', (e) => { if (child.pid === undefined) { this.log.push(`spawn: ${e.message}`); ended(127, null); } });
    });
  }

  /**
   * Starts `command` as domain `launch.domid` and waits for its ready line. `detached` gives it a process
   * group of its own (the launcher alone decides how it stops: Ctrl-C in a terminal does not reach it).
   */
  static async start(command: string[], launch: DomainLaunch, readyTimeoutMs: number, extraEnv: Record<string, string> = {}, options: { detached?: boolean } = {}): Promise<DomainAgent> {
    const [file, ...args] = command;
    if (!file) throw new Error('no domain command given');
    const child = spawn(file, args, { env: { ...process.env, ...launchEnv(launch), ...extraEnv }, stdio: ['pipe', 'pipe', 'pipe'], detached: options.detached ?? false });
    const agent = new DomainAgent(child, command.join(' '));
    // A write to a process that just died fails with EPIPE; its exit is what counts.
    child.stdin?.on('error', () => undefined);
    const keep = (line: string): void => { agent.log.push(line); if (agent.log.length > 40) agent.log.shift(); };
    createInterface({ input: child.stderr! }).on('line', (l) => keep(`stderr: ${l}`));
    const ready = new Promise<AgentReady>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        let msg: unknown;
        try { msg = JSON.parse(line); } catch { keep(`stdout: ${line}`); return; }
        const m = msg as Partial<AgentReply & AgentReady>;
        if (agent.#state === 'starting' && m.ready === true) { agent.#state = 'ready'; resolve(m as AgentReady); return; }
        const p = typeof m.id === 'number' ? agent.#pending.get(m.id) : undefined;
        if (!p) { keep(`stdout: ${line}`); return; }
        agent.#pending.delete(m.id!);
        if (m.ok === true) p.resolve((m as { result?: Record<string, unknown> }).result ?? {});
        else {
          const err = (m as { error?: { code?: string; message?: string } }).error ?? {};
          p.reject(new AgentError(err.code ?? 'ERR_INTERNAL', err.message ?? 'failed'));
        }
      });
      child.once('error', reject);
      void agent.exited.then((x) => reject(new Error(`the domain process exited (${x.signal ?? x.code}) before its ready line`)));
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      const r = await Promise.race([ready, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no ready line within ${readyTimeoutMs} ms`)), readyTimeoutMs); })]);
      if (r.domid !== launch.domid) throw new Error(`the ready line names domain ${r.domid}, not ${launch.domid}`);
      return agent;
    } catch (e) {
      await agent.stop(2_000);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends one command and waits for its answer (at most timeoutMs). */
  call<K extends keyof AgentCommands>(cmd: K, args: AgentCommands[K]['args'], timeoutMs: number): Promise<AgentCommands[K]['result']> {
    if (this.#state !== 'ready') return Promise.reject(new Error(`the domain process is ${this.#state}`));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.#pending.delete(id); reject(new Error(`the domain did not answer ${cmd} within ${timeoutMs} ms`)); }, timeoutMs);
      this.#pending.set(id, {
        resolve: (r) => { clearTimeout(timer); resolve(r as AgentCommands[K]['result']); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.child.stdin!.write(`${JSON.stringify({ id, cmd, args })}\n`);
    });
  }

  /** Asks it to shut down, then SIGTERM, then SIGKILL; resolves with how it ended. */
  async stop(graceMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; asked: boolean }> {
    let asked = false;
    if (this.#state === 'ready') {
      asked = await this.call('shutdown', {}, graceMs).then(() => true, () => false);
    }
    const waitExit = async (ms: number) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        return await Promise.race([this.exited, new Promise<undefined>((r) => { timer = setTimeout(() => r(undefined), ms); })]);
      } finally {
        clearTimeout(timer);
      }
    };
    let exit = await waitExit(graceMs);
    if (!exit) { this.child.kill('SIGTERM'); exit = await waitExit(graceMs); }
    if (!exit) { this.child.kill('SIGKILL'); exit = await this.exited; }
    return { ...exit, asked };
  }
}
