/**
 * What a scenario runs against: the run's VMs, the buffers it shared so far
 * (by label), the parameters, and where its checks and statistics go.
 * Declarative steps and TypeScript scenarios use the same context.
 */
import type { FramebufferInfo } from '../process/sim/framebuffer-info.ts';
import type { OutsideDomain } from '../launcher/outside-domain.ts';
import type { Check } from '../launcher/result.ts';
import type { Run } from '../launcher/run.ts';
import type { VmHandle } from '../launcher/vm-handle.ts';
import type { Params, Step } from './types.ts';

/** A buffer the scenario exported, as the launcher tracks it. */
export interface BufferRecord {
  readonly label: string;
  /** Exporting domain's name. */
  readonly exporter: string;
  /** The dmabuf module's buffer id in the exporter. */
  readonly buf: number;
  readonly size: number;
  readonly nents: number;
  /** Runs of contiguous frames (1 = one high-order chunk; nents = scattered). */
  readonly runs: number;
  readonly framebuffer: FramebufferInfo | undefined;
  /** Buffer id (text) per importing domain. */
  readonly hids: Map<string, string>;
  /** Open fd (the dmabuf module's id) per importing domain. */
  readonly fds: Map<string, number>;
  /** Set once the exporter dropped its own reference. */
  freed: boolean;
}

/** Runs one step (steps/index.ts provides it; injected to keep the import graph one-way). */
export type StepRunner = (ctx: ScenarioContext, step: Step, index: string) => Promise<Record<string, unknown>>;

/** A scenario's view of its run. */
export class ScenarioContext {
  readonly run: Run;
  readonly params: Params;
  readonly signal: AbortSignal;
  readonly buffers = new Map<string, BufferRecord>();
  readonly checks: Check[] = [];
  /** Statistics for the result (scenario-specific keys, plus the runner's own). */
  readonly stats: Record<string, unknown> = {};
  /** NEW_IMPORT events read while waiting for another buffer's, per domain. */
  readonly stashedImports = new Map<string, Array<Record<string, unknown>>>();
  /** Steps whose completion nobody awaits (unexport with wait: none), settled before the run ends. */
  readonly background: Array<Promise<unknown>> = [];
  private readonly runStep: StepRunner;
  private readonly progressSink: (line: string) => void;
  private stepCount = 0;

  constructor(init: { run: Run; params: Params; signal: AbortSignal; runStep: StepRunner; progress: (line: string) => void }) {
    this.run = init.run;
    this.params = init.params;
    this.signal = init.signal;
    this.runStep = init.runStep;
    this.progressSink = init.progress;
  }

  /** A VM by domain name (throws for an outside domain). */
  vm(name: string): VmHandle {
    return this.run.vm(name);
  }

  /** The outside domain of that name, if the domain is one (README, "Outside domains"). */
  outside(name: string): OutsideDomain | undefined {
    return this.run.outside(name);
  }

  /** The domain id of a VM or an outside domain. */
  domid(name: string): number {
    return this.run.domid(name);
  }

  /** A buffer by label; throws ERR_BAD_ARGUMENT if the scenario has not exported it. */
  buffer(label: string): BufferRecord {
    const b = this.buffers.get(label);
    if (!b) throw Object.assign(new Error(`no buffer "${label}" has been exported yet`), { code: 'ERR_BAD_ARGUMENT' });
    return b;
  }

  /** The buffer's id at one importer (or its only importer). */
  hid(label: string, importer?: string): string {
    const b = this.buffer(label);
    if (importer !== undefined) {
      const h = b.hids.get(importer);
      if (!h) throw Object.assign(new Error(`buffer "${label}" was not exported to ${importer}`), { code: 'ERR_BAD_ARGUMENT' });
      return h;
    }
    if (b.hids.size !== 1) throw Object.assign(new Error(`buffer "${label}" has ${b.hids.size} importers: name one (to)`), { code: 'ERR_BAD_ARGUMENT' });
    return [...b.hids.values()][0]!;
  }

  /** Runs a step; its outcome becomes a check. Resolves with the step's result; rejects if the step failed. */
  step(step: Step): Promise<Record<string, unknown>> {
    return this.runStep(this, step, String(++this.stepCount));
  }

  /** Adds a check. */
  check(name: string, ok: boolean, detail = ''): boolean {
    this.checks.push({ name, ok, detail });
    return ok;
  }

  /** Sets a statistic. */
  stat(key: string, value: unknown): void {
    this.stats[key] = value;
  }

  /** Adds to a numeric statistic. */
  count(key: string, n: number): void {
    this.stats[key] = ((this.stats[key] as number | undefined) ?? 0) + n;
  }

  /** A progress line (stdout, or stderr with --json). */
  progress(line: string): void {
    this.progressSink(line);
  }

  /** Throws if the run was interrupted (SIGINT, SIGTERM). */
  throwIfAborted(): void {
    if (this.signal.aborted) throw Object.assign(new Error(`interrupted (${String(this.signal.reason)})`), { code: 'ERR_INTERRUPTED' });
  }
}
