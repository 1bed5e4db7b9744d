/**
 * Starts the backend (vm-sim/hv-main.ts) as a child process. It counts as
 * started when it reports ready with its URL, control token and run tag.
 */
import { ManagedChild } from './child.ts';
import type { HvReadyMessage } from './ipc.ts';
import { HV_MAIN } from './paths.ts';

/** Options of spawnHv. */
export interface SpawnHvOptions {
  /** Command-line arguments for hv-main. */
  args?: string[];
  /** Extra environment for hv-main. */
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
  echoOutput?: boolean;
}

/** A running backend process. */
export interface HvProcess {
  readonly child: ManagedChild<HvReadyMessage>;
  readonly url: string;
  readonly controlToken: string;
  /** Prefix of every shared-memory file of this backend. */
  readonly runTag: string;
  readonly pid: number;
}

/** Forks hv-main and waits for its ready report. */
export async function spawnHv(options: SpawnHvOptions = {}): Promise<HvProcess> {
  const child = await ManagedChild.start<HvReadyMessage>({
    name: 'hv',
    script: HV_MAIN,
    ...(options.args ? { args: options.args } : {}),
    ...(options.env ? { env: options.env } : {}),
    ...(options.readyTimeoutMs !== undefined ? { readyTimeoutMs: options.readyTimeoutMs } : {}),
    ...(options.echoOutput !== undefined ? { echoOutput: options.echoOutput } : {}),
    isReady: (msg) => msg.type === 'ready' && typeof msg.url === 'string' && typeof msg.controlToken === 'string' && typeof msg.runTag === 'string',
  });
  const { url, controlToken, runTag } = child.ready;
  return { child, url, controlToken, runTag, pid: child.pid };
}
