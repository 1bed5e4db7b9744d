/**
 * Entry point of one VM process (forked by spawnVm with an IPC channel).
 *
 * Boots the guest kernel from the configuration in HDMABUF_VM_CONFIG, sets up
 * the command modules, reports { type: 'ready', domid, pid }, and then serves
 * commands from the launcher until told to shut down.
 *
 * Exit paths, all through one cascade (module teardown, then kernel
 * shutdown, then exit):
 *   - kernel.shutdown command: exit 0 after the result is sent;
 *   - the IPC channel disconnects (the launcher died): exit 0;
 *   - SIGTERM / SIGINT: exit 0;
 *   - the backend connection closes under us: no exit; a `hvClosed` event
 *     tells the launcher, and commands that need the backend fail;
 *   - boot fails: exit 1, with the reason on stderr;
 *   - an unexpected error (an exception or a rejection nobody handled, i.e.
 *     a bug: a peer's or the backend's death is an error of the step that
 *     met it, never this): exit 4, after reporting it to the launcher as a
 *     `fatal` event { kind, code, message } and on stderr.
 */
import { GuestKernel } from '../src/guest/kernel.ts';
import { CommandRegistry, type VmContext } from './process/commands/commands.ts';
import { isTyped, toIpcError, type CallMessage, type ResultMessage, type VmEventMessage, type VmReadyMessage } from './process/spawn/ipc.ts';
import { vmModules } from './process/commands/modules.ts';
import { childTrace, startChildTrace } from './trace/child-trace.ts';
import { nowUs, processStartUs } from './trace/clock.ts';
import { vmSampler } from './trace/vm-sampler.ts';
import { startTransitionLog } from './trace/transition-log.ts';
import type { ValueOf } from '../protocol/state-machine.ts';
import { parseVmConfig, VM_CONFIG_ENV } from './process/spawn/vm-config.ts';

/** Process lifecycle. */
const VmProcessState = {
  Booting: 'booting',
  Serving: 'serving',
  Exiting: 'exiting',
} as const;
/** One of the VmProcessState states. */
type VmProcessState = ValueOf<typeof VmProcessState>;

let state: VmProcessState = VmProcessState.Booting;
let kernel: GuestKernel | undefined;
let ctx: VmContext | undefined;
/** Exit code asked for by a command; applied after its result is sent. */
let pendingExit: number | undefined;
const registry = new CommandRegistry();

function send(msg: VmReadyMessage | ResultMessage | VmEventMessage): void {
  if (process.connected) process.send!(msg);
}

/** Runs the close cascade once, then exits with `code`. */
async function exit(code: number, why: string): Promise<never> {
  if (state !== VmProcessState.Exiting) {
    state = VmProcessState.Exiting;
    if (code !== 0) process.stderr.write(`vm ${process.pid}: exiting (${why})\n`);
    // A wedged cascade must not keep the process alive.
    setTimeout(() => process.exit(code), 5000).unref();
    try {
      if (kernel && ctx) for (const mod of [...registry.modules].reverse()) await mod.teardown?.(ctx);
      await kernel?.shutdown();
    } catch (e) {
      process.stderr.write(`vm ${process.pid}: shutdown: ${(e as Error).stack ?? String(e)}\n`);
    }
    process.exit(code);
  }
  return new Promise<never>(() => undefined);
}

/** Exit code after an unexpected error (see the exit paths above). */
const EXIT_UNEXPECTED = 4;

/** Reports an error nobody handled to the launcher, then exits through the cascade. */
function fatal(kind: 'uncaughtException' | 'unhandledRejection', e: unknown): void {
  const body = toIpcError(e);
  process.stderr.write(`vm ${process.pid}: ${kind}: ${(e as Error)?.stack ?? String(e)}\n`);
  try {
    send({ type: 'event', name: 'fatal', data: { kind, code: body.code, message: body.message } });
  } catch {
    // The channel may be gone too; stderr and the exit code still tell.
  }
  void exit(EXIT_UNEXPECTED, kind);
}

async function serve(msg: CallMessage): Promise<void> {
  const t0 = nowUs();
  let result: ResultMessage;
  try {
    if (!ctx || state !== VmProcessState.Serving) throw Object.assign(new Error(`vm is ${state}`), { code: 'ERR_STATE' });
    const value = await registry.run(ctx, msg.cmd, msg.args);
    result = { type: 'result', id: msg.id, ok: true, value: value ?? {} };
  } catch (e) {
    result = { type: 'result', id: msg.id, ok: false, error: toIpcError(e) };
  }
  childTrace()?.span(msg.cmd, 'cmd', t0, result.ok ? undefined : { error: result.error.code });
  try {
    send(result);
  } catch (e) {
    // A value that cannot be cloned is a bug of the command: report it as an error instead.
    send({ type: 'result', id: msg.id, ok: false, error: { code: 'ERR_INTERNAL', message: `${msg.cmd}: result not sendable: ${(e as Error).message}` } });
  }
  if (pendingExit !== undefined) void exit(pendingExit, 'shutdown command');
}

async function main(): Promise<void> {
  if (!process.send) {
    process.stderr.write('vm-main must be started by the launcher with an IPC channel (see vm-sim/process/spawn/spawn-vm.ts)\n');
    process.exit(2);
  }
  // After the launcher died nobody reads our stdout/stderr pipes: an EPIPE must not crash the exit cascade.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  process.on('disconnect', () => void exit(0, 'launcher disconnected'));
  process.on('SIGTERM', () => void exit(0, 'SIGTERM'));
  process.on('SIGINT', () => void exit(0, 'SIGINT'));
  process.on('uncaughtException', (e) => fatal('uncaughtException', e));
  process.on('unhandledRejection', (e) => fatal('unhandledRejection', e));
  process.on('message', (msg: unknown) => {
    if (isTyped(msg) && msg.type === 'call') void serve(msg as unknown as CallMessage);
  });

  // Before the kernel connects: the trace must see the connection's first frame (HELLO).
  startChildTrace('client');
  startTransitionLog();
  const config = parseVmConfig(process.env[VM_CONFIG_ENV]);
  const wanted = config.modules ? new Set(config.modules) : undefined;
  for (const mod of vmModules) if (!wanted || wanted.has(mod.name)) registry.add(mod);
  if (wanted) for (const name of wanted) if (!registry.modules.some((m) => m.name === name)) throw new Error(`unknown VM module ${name}`);

  kernel = await GuestKernel.boot({
    url: config.url, domid: config.domid, token: config.token, ramPath: config.ramPath,
    grantTablePath: config.grantTablePath, memPages: config.memPages, maxGrantFrames: config.maxGrantFrames,
    name: config.name ?? `dom${config.domid}`,
    ...(config.maxVersion !== undefined ? { maxVersion: config.maxVersion } : {}),
  });
  // The backend died: the VM stays up (the launcher decides when it stops, and sees it alive); commands
  // that need the backend fail with its connection's error (ERR_CLOSED) as errors of their own.
  kernel.on('hvClosed', (code: number, reason: string) => send({ type: 'event', name: 'hvClosed', data: { code, reason } }));
  ctx = {
    config,
    kernel,
    state: new Map(),
    emit: (name, data) => send({ type: 'event', name, data }),
    requestExit: (code) => { pendingExit = code; },
  };
  for (const mod of registry.modules) await mod.setup?.(ctx);
  if (state !== VmProcessState.Booting) return; // told to exit while booting
  state = VmProcessState.Serving;
  // Tracing: boot as a slice, and the kernel's counters as counter tracks through the run.
  const trace = childTrace();
  trace?.span('VM boot', 'start', processStartUs());
  trace?.sampleWith(vmSampler(kernel, ctx, trace));
  send({ type: 'ready', domid: kernel.domid, pid: process.pid });
}

main().catch((e: unknown) => {
  process.stderr.write(`vm ${process.pid}: boot failed: ${(e as Error)?.stack ?? String(e)}\n`);
  void exit(1, 'boot failed');
});
