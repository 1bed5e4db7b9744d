/**
 * The launcher's handle on an outside domain of a run: a domain whose
 * process is a command of the scenario's (any language, any
 * implementation), not this project's VM. It is started as SPEC.md
 * Appendix B.1 says (the backend URL, its domid and token, its files in the
 * environment), ready when it prints the ready line of B.2, and driven by
 * the commands of B.3 on its stdin (import, read, release, ... as far as it
 * implements them); the project's VMs reach it over the protocol like any
 * peer. The close cascade asks it to shut down (B.3 `shutdown`), then
 * SIGTERMs it; one still running after the grace period is a leaked
 * process, as a VM would be.
 */
import { DomainAgent } from '../conformance/domain/agent.ts';
import type { AgentCommands, DomainLaunch } from '../conformance/domain/contract.ts';
import type { ChildExit } from '../process/spawn/child.ts';
import { VmState } from './vm-handle.ts';

/** Most lines of its output kept for errors. */
const LOG_TAIL = 20;

/** One outside domain of a run. */
export class OutsideDomain {
  readonly name: string;
  readonly domid: number;
  readonly memPages: number;
  /** The command line it was started with. */
  readonly command: readonly string[];
  state: VmState = VmState.Running;
  /** Resolves with its exit (never rejects). */
  readonly exited: Promise<ChildExit>;
  private exitValue: ChildExit | undefined;
  private readonly agent: DomainAgent;

  private constructor(name: string, memPages: number, domid: number, command: readonly string[], agent: DomainAgent) {
    this.name = name;
    this.memPages = memPages;
    this.domid = domid;
    this.command = command;
    this.agent = agent;
    this.exited = agent.exited.then((e) => {
      this.exitValue = e;
      if (this.state === VmState.Running) this.state = VmState.Exited;
      return e;
    });
  }

  /** Starts `command` as the domain `launch` describes; resolves once its ready line came (rejects, the process reaped, otherwise). */
  static async start(name: string, command: readonly string[], launch: DomainLaunch, readyTimeoutMs: number): Promise<OutsideDomain> {
    try {
      const agent = await DomainAgent.start([...command], launch, readyTimeoutMs, {}, { detached: true });
      return new OutsideDomain(name, launch.memPages, launch.domid, command, agent);
    } catch (e) {
      throw Object.assign(new Error(`outside domain ${name} (${command.join(' ')}): ${(e as Error).message} (SPEC.md Appendix B.2)`), { code: 'ERR_OUTSIDE_DOMAIN' });
    }
  }

  get pid(): number {
    return this.agent.child.pid ?? -1;
  }

  /** True until the process exited. */
  get alive(): boolean {
    return this.exitValue === undefined;
  }

  /** How it exited, once it has. */
  get exit(): ChildExit | undefined {
    return this.exitValue;
  }

  /** The last lines of its stderr and stray stdout. */
  get log(): readonly string[] {
    return this.agent.log.slice(-LOG_TAIL);
  }

  /** Runs one command of Appendix B.3; an error it answers keeps its code. */
  call<K extends keyof AgentCommands>(cmd: K, args: AgentCommands[K]['args'], timeoutMs: number): Promise<AgentCommands[K]['result']> {
    return this.agent.call(cmd, args, timeoutMs);
  }

  /** Kills the process (a crash) and resolves with its exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<ChildExit> {
    this.state = VmState.Killed;
    if (this.alive) this.agent.child.kill(signal);
    return this.exited;
  }

  /** Sends a signal; false if it already exited. */
  signal(signal: NodeJS.Signals): boolean {
    return this.alive && this.agent.child.kill(signal);
  }

  /** Asks it to shut down (B.3 `shutdown`; SIGTERM if it does not answer); true if it exited within graceMs. */
  async shutdownGracefully(graceMs: number): Promise<boolean> {
    if (!this.alive) return true;
    const deadline = performance.now() + graceMs;
    try {
      await this.agent.call('shutdown', {}, graceMs);
    } catch {
      this.signal('SIGTERM');
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), Math.max(0, deadline - performance.now())); });
    try {
      return await Promise.race([this.exited.then(() => true as const), late]);
    } finally {
      clearTimeout(timer);
    }
  }
}
