/**
 * Starts the backend (vm-sim/hv-main.ts) as a child process. It counts as
 * started when it reports ready with its URL, control token and run tag.
 */
import { ManagedChild } from './child.ts';
import type { HvReadyMessage } from './ipc.ts';
import { HV_MAIN } from './paths.ts';

/** Options of spawnHv. */
export interface SpawnHvOptions {
  /** Prefix of the run's shared-memory files (hv-main --run-tag); default: chosen by the backend. */
  runTag?: string;
  /** Directory of the shared-memory files (hv-main --shm-dir). */
  shmDir?: string;
  /** Backend diagnostics on its stderr (hv-main --verbose). */
  verbose?: boolean;
  /** More command-line arguments for hv-main. */
  args?: string[];
  /** Extra environment for hv-main. */
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
  echoOutput?: boolean;
  /** 'pipe' (default) captures the child's output; 'inherit' shares ours. */
  output?: 'pipe' | 'inherit';
}

/** A running backend process. */
export interface HvProcess {
  readonly child: ManagedChild<HvReadyMessage>;
  readonly url: string;
  readonly controlToken: string;
  /** Token of a read-only observer connection (SPEC.md 9.6: HV_STATS only). */
  readonly observerToken: string;
  /** Prefix of every shared-memory file of this backend. */
  readonly runTag: string;
  readonly pid: number;
}

/**
 * Node flags of the backend process (SPEC.md 3.7): a young generation of at
 * most 1 MiB per semi-space, so that the garbage of large batch replies is
 * collected within a megabyte of allocation instead of growing the heap
 * (V8's default lets new space alone reach 32 MiB, which a domain that never
 * reads its replies would make the backend keep after it has gone); and an
 * old generation that grows by 20% per full collection instead of V8's
 * adaptive factor (up to 4x), so that the decoded batches that survive one
 * young collection are collected before they double the heap (measured with
 * the kernel's RSS high-water mark: 18 to 67 MiB above the baseline without
 * it, 11 to 22 MiB with it).
 */
export const HV_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--heap-growing-percent=20'];

/** Forks hv-main and waits for its ready report. */
export async function spawnHv(options: SpawnHvOptions = {}): Promise<HvProcess> {
  const args = [...(options.args ?? [])];
  if (options.runTag !== undefined) args.push('--run-tag', options.runTag);
  if (options.shmDir !== undefined) args.push('--shm-dir', options.shmDir);
  if (options.verbose) args.push('--verbose');
  const child = await ManagedChild.start<HvReadyMessage>({
    name: 'hv',
    script: HV_MAIN,
    execArgv: ['--import', 'tsx', ...HV_NODE_FLAGS],
    args,
    ...(options.env ? { env: options.env } : {}),
    ...(options.readyTimeoutMs !== undefined ? { readyTimeoutMs: options.readyTimeoutMs } : {}),
    ...(options.echoOutput !== undefined ? { echoOutput: options.echoOutput } : {}),
    ...(options.output !== undefined ? { output: options.output } : {}),
    isReady: (msg) => msg.type === 'ready' && typeof msg.url === 'string' && typeof msg.controlToken === 'string' && typeof msg.observerToken === 'string' && typeof msg.runTag === 'string',
  });
  const { url, controlToken, observerToken, runTag } = child.ready;
  return { child, url, controlToken, observerToken, runTag, pid: child.pid };
}
