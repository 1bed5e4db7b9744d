/**
 * The command registry of a VM process. Each layer of the guest (the kernel
 * now, the hyper_dmabuf driver later) contributes a VmModule in its own file:
 * a name, optional setup and teardown, and its commands. vm-main loads the
 * modules listed in modules.ts and serves their commands over IPC.
 *
 * Command handlers get the VM context and the raw args (structured-clone
 * values from the launcher) and must check them: args.ts has the helpers.
 */
import type { GuestKernel } from '../../../src/guest/kernel.ts';
import type { VmConfig } from '../spawn/vm-config.ts';

/** Numbered objects a VM keeps between commands (buffers, mappings, ...), per kind. */
export class ObjectStore<T> {
  private readonly items = new Map<number, T>();
  private next = 1;

  constructor(readonly kind: string) {}

  /** Stores an object; returns its id. */
  add(item: T): number {
    const id = this.next++;
    this.items.set(id, item);
    return id;
  }

  /** The object with this id; throws ERR_BAD_ARGUMENT if there is none. */
  get(id: unknown): T {
    const item = typeof id === 'number' ? this.items.get(id) : undefined;
    if (item === undefined) throw Object.assign(new Error(`no ${this.kind} ${String(id)}`), { code: 'ERR_BAD_ARGUMENT' });
    return item;
  }

  delete(id: number): boolean {
    return this.items.delete(id);
  }

  values(): IterableIterator<T> {
    return this.items.values();
  }

  get size(): number {
    return this.items.size;
  }
}

/** What command handlers see. */
export interface VmContext {
  readonly config: VmConfig;
  readonly kernel: GuestKernel;
  /** Per-module state, keyed by module name; a module puts its stores here in setup. */
  readonly state: Map<string, unknown>;
  /** Sends an unsolicited event to the launcher. */
  emit(name: string, data: unknown): void;
  /** Exits the process with `code` once the current command's result has been sent (after teardown). */
  requestExit(code: number): void;
}

/** Runs one command. */
export type CommandHandler = (ctx: VmContext, args: Record<string, unknown>) => unknown;

/** A layer's contribution to a VM process. */
export interface VmModule {
  /** Module name; command names should start with it or a short prefix of its own. */
  readonly name: string;
  /** Runs once after the kernel booted, before the VM reports ready. */
  setup?(ctx: VmContext): void | Promise<void>;
  /** Runs at shutdown, before the kernel shuts down (reverse order of setup). */
  teardown?(ctx: VmContext): void | Promise<void>;
  readonly commands: Readonly<Record<string, CommandHandler>>;
}

/** Commands by name, from every loaded module. */
export class CommandRegistry {
  private readonly handlers = new Map<string, { module: string; run: CommandHandler }>();
  private readonly loaded: VmModule[] = [];

  /** Adds a module's commands; a name registered twice is a programming error. */
  add(module: VmModule): void {
    for (const [name, run] of Object.entries(module.commands)) {
      const existing = this.handlers.get(name);
      if (existing) throw new Error(`command ${name} of module ${module.name} is already registered by ${existing.module}`);
      this.handlers.set(name, { module: module.name, run });
    }
    this.loaded.push(module);
  }

  /** Modules in load order. */
  get modules(): readonly VmModule[] {
    return this.loaded;
  }

  /** Command names. */
  names(): string[] {
    return [...this.handlers.keys()].sort();
  }

  /** Runs a command; unknown names fail with ERR_UNKNOWN_COMMAND. */
  async run(ctx: VmContext, cmd: string, args: unknown): Promise<unknown> {
    const handler = this.handlers.get(cmd);
    if (!handler) throw Object.assign(new Error(`unknown command ${cmd}`), { code: 'ERR_UNKNOWN_COMMAND' });
    const a = typeof args === 'object' && args !== null && !Array.isArray(args) ? (args as Record<string, unknown>) : {};
    return handler.run(ctx, a);
  }
}
