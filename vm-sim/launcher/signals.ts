/**
 * Ctrl-C and SIGTERM during a run: the first signal aborts the run, which
 * stops it through the normal close cascade (leaks are still measured and
 * reported); a second signal, for an impatient user, SIGKILLs every child at
 * once and exits. Either way no child outlives the launcher: children also
 * exit by themselves when the launcher's IPC channel closes.
 */
import { liveChildren } from '../process/child.ts';

/** Signal handling of one CLI invocation. */
export interface SignalGuard {
  readonly signal: AbortSignal;
  /** The signal that aborted the run, if any. */
  readonly received: () => NodeJS.Signals | undefined;
  dispose(): void;
}

/** Installs the handlers; `log` tells the user what is happening. */
export function guardSignals(log: (line: string) => void): SignalGuard {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (!received) {
      received = sig;
      log(`${sig}: stopping the run (again to kill every process at once)`);
      controller.abort(sig);
      return;
    }
    log(`${sig} again: killing every process of the run`);
    for (const c of liveChildren()) c.kill('SIGKILL');
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    received: () => received,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
