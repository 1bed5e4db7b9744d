/**
 * Process entry of the backend ("hv").
 *
 *   tsx vm-sim/hv-main.ts [--port N] [--shm-dir DIR] [--run-tag TAG] [--host H] [--max-version V] [--verbose]
 *                         [--hello-timeout-ms MS] [--send-budget BYTES]
 *
 * Options may also come from the environment: HDMABUF_HV_PORT,
 * HDMABUF_SHM_DIR, HDMABUF_RUN_TAG, HDMABUF_HV_HOST,
 * HDMABUF_HV_MAX_VERSION, HDMABUF_HV_VERBOSE=1 (argv wins).
 * --max-version 1 makes a backend that speaks protocol v1 only (SPEC.md 15).
 * Once the backend accepts connections it reports ready:
 * over IPC `{ type: 'ready', url, controlToken, observerToken, runTag, pid }` when forked
 * with a channel, otherwise the same JSON on one stdout line.
 *
 * It closes the backend (every domain destroyed, every shm file of its run
 * removed) and exits on SIGTERM or SIGINT, when the IPC channel disconnects
 * (the parent died), and after logging an unexpected exception (exit 1).
 */
import { parseArgs } from 'node:util';
import { Backend, type BackendOptions } from '../src/hv/backend.ts';
import { childTrace, startChildTrace } from './trace/child-trace.ts';
import { processStartUs } from './trace/clock.ts';
import { hvCounters } from './trace/counters.ts';
import { startTransitionLog } from './trace/transition-log.ts';

function options(): BackendOptions {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'shm-dir': { type: 'string' },
      'run-tag': { type: 'string' },
      'max-version': { type: 'string' },
      verbose: { type: 'boolean' },
      'hello-timeout-ms': { type: 'string' },
      'send-budget': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const env = process.env;
  const portText = values.port ?? env.HDMABUF_HV_PORT;
  const port = portText === undefined ? 0 : Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`bad port ${portText}`);
  const verbose = values.verbose ?? env.HDMABUF_HV_VERBOSE === '1';
  const opts: BackendOptions = { port };
  const host = values.host ?? env.HDMABUF_HV_HOST;
  const shmDir = values['shm-dir'] ?? env.HDMABUF_SHM_DIR;
  const runTag = values['run-tag'] ?? env.HDMABUF_RUN_TAG;
  if (host !== undefined) opts.host = host;
  if (shmDir !== undefined) opts.shmDir = shmDir;
  if (runTag !== undefined) opts.runTag = runTag;
  // Budgets of SPEC 3.7, for tests and the stress suite that reach them quickly.
  const positive = (text: string | undefined, what: string): number | undefined => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`bad ${what} ${text}`);
    return n;
  };
  const helloTimeoutMs = positive(values['hello-timeout-ms'], '--hello-timeout-ms');
  const sendBudget = positive(values['send-budget'], '--send-budget');
  if (helloTimeoutMs !== undefined) opts.helloTimeoutMs = helloTimeoutMs;
  if (sendBudget !== undefined) opts.backpressureBytes = sendBudget;
  const maxVersionText = values['max-version'] ?? env.HDMABUF_HV_MAX_VERSION;
  if (maxVersionText !== undefined) {
    const maxVersion = Number(maxVersionText);
    if (!Number.isInteger(maxVersion)) throw new RangeError(`bad --max-version ${maxVersionText}`);
    opts.maxVersion = maxVersion;
  }
  if (verbose) opts.log = (line) => process.stderr.write(`[hv] ${line}\n`);
  return opts;
}

async function main(): Promise<void> {
  // When the launcher dies, nothing reads our stdout/stderr pipes any more and every write fails
  // with EPIPE. That must never stop the close cascade, which is what removes the run's files.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  // With HDMABUF_TRACE=1 (set by the launcher for --trace), records every frame for the run's trace.
  startChildTrace('server');
  startTransitionLog();
  const backend = await Backend.start(options());
  // Tracing: start-up as a slice, and HV_STATS's figures as counter tracks through the run.
  childTrace()?.span('hv start-up', 'start', processStartUs());
  childTrace()?.sampleWith(() => hvCounters(backend.stats()));
  let exiting = false;
  const exit = (code: number, why: string): void => {
    if (exiting) return;
    exiting = true;
    process.stderr.write(`[hv] exiting: ${why}\n`);
    const force = setTimeout(() => process.exit(code || 1), 10_000);
    force.unref();
    backend.close().then(
      () => process.exit(code),
      (e: unknown) => {
        process.stderr.write(`[hv] close failed: ${(e as Error)?.stack ?? String(e)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => exit(0, 'SIGTERM'));
  process.on('SIGINT', () => exit(0, 'SIGINT'));
  process.on('disconnect', () => exit(0, 'parent disconnected'));
  process.on('uncaughtException', (e) => {
    process.stderr.write(`[hv] unexpected exception: ${e.stack ?? String(e)}\n`);
    exit(1, 'unexpected exception');
  });
  process.on('unhandledRejection', (e) => {
    process.stderr.write(`[hv] unhandled rejection: ${(e as Error)?.stack ?? String(e)}\n`);
    exit(1, 'unhandled rejection');
  });
  const ready = { type: 'ready' as const, url: backend.url, controlToken: backend.controlToken, observerToken: backend.observerToken, runTag: backend.runTag, pid: process.pid };
  if (process.send) {
    // A parent that died before we got here never fires 'disconnect'.
    if (!process.connected) return exit(0, 'parent gone before ready');
    process.send(ready);
  } else {
    process.stdout.write(`${JSON.stringify(ready)}\n`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`[hv] cannot start: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
});
