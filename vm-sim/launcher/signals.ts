/**
 * Interruptions of a run, and what each one does:
 *
 *   - Ctrl-C or SIGTERM: aborts the run, which stops through the normal close
 *     cascade (leaks are measured and reported). The children run in their
 *     own process groups (child.ts), so a Ctrl-C in a terminal reaches the
 *     launcher only: the cascade still finds them alive and can measure.
 *   - EPIPE on stdout or stderr (the output piped into `head`, which
 *     exited): the same abort, quietly (nothing more is written to the
 *     closed stream, no stack trace).
 *   - a second Ctrl-C or SIGTERM, for an impatient user: every child is
 *     SIGKILLed at once and reaped, then the run's shared-memory files are
 *     removed (the killed backend can no longer do it), then the launcher
 *     exits.
 *
 * Exit codes: 130 after SIGINT, 143 after SIGTERM, 141 (128 + SIGPIPE, what
 * a shell reports for a process ended by a broken pipe) after EPIPE.
 * Either way no child outlives the launcher: children also exit by
 * themselves when the launcher's IPC channel closes.
 */
import { liveChildren } from '../process/spawn/child.ts';
import { sweepActiveRuns } from './leaks.ts';

/** What interrupted a run. */
export type Interruption = 'SIGINT' | 'SIGTERM' | 'EPIPE';

/** Exit code of the CLI after an interruption. */
export const INTERRUPTED_EXIT_CODES: Readonly<Record<Interruption, number>> = { SIGINT: 130, SIGTERM: 143, EPIPE: 141 };

/** How long the forced path waits for SIGKILLed children to be reaped before removing the files. */
const FORCED_REAP_MS = 3000;

/** Interruption handling of one CLI invocation. */
export interface SignalGuard {
  readonly signal: AbortSignal;
  /** What aborted the run, if anything. */
  readonly received: () => Interruption | undefined;
  /** The exit code the interruption calls for, if there was one. */
  readonly exitCode: () => number | undefined;
  dispose(): void;
}

/** Installs the handlers; `log` tells the user what is happening. */
export function guardSignals(log: (line: string) => void): SignalGuard {
  const controller = new AbortController();
  let received: Interruption | undefined;
  let brokenPipe = false;
  const say = (line: string): void => { if (!brokenPipe) log(line); };
  const onSignal = (sig: NodeJS.Signals): void => {
    if (!received) {
      received = sig as Interruption;
      say(`${sig}: stopping the run (again to kill every process at once)`);
      controller.abort(sig);
      return;
    }
    say(`${sig} again: killing every process of the run`);
    void killEverything().finally(() => process.exit(INTERRUPTED_EXIT_CODES[sig as Interruption] ?? 1));
  };
  // A write to a pipe whose reader went away: stop the run, and write nothing more anywhere.
  const onStreamError = (e: NodeJS.ErrnoException): void => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') return;
    brokenPipe = true;
    if (!received) {
      received = 'EPIPE';
      controller.abort('EPIPE');
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Stays installed after dispose(): the final write of the result may meet the broken pipe too.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', onStreamError);
  return {
    signal: controller.signal,
    received: () => received,
    exitCode: () => (received ? INTERRUPTED_EXIT_CODES[received] : undefined),
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** SIGKILLs every child, waits (briefly) until they are reaped, then removes the files of every run of this process. */
async function killEverything(): Promise<void> {
  const children = liveChildren();
  for (const c of children) c.kill('SIGKILL');
  await Promise.all(children.map((c) => c.exitWithin(FORCED_REAP_MS)));
  sweepActiveRuns();
}
