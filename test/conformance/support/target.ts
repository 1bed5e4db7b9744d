/**
 * The backend under test.
 *
 * With HDMABUF_CONFORMANCE_URL and HDMABUF_CONFORMANCE_CONTROL_TOKEN set, the
 * suite tests that backend (another implementation, or ours started by
 * hand). Otherwise each test file spawns this project's backend process
 * (vm-sim/hv-main.ts, through spawnHv: started when it reports ready) and
 * reaps it after the file, checking that it exits cleanly and leaves no
 * shared-memory file of its run behind (SPEC 9.3 rule 3).
 */
import { readdirSync } from 'node:fs';
import { spawnHv, type HvProcess } from '../../../vm-sim/process/spawn/spawn-hv.ts';

/** Where the backend under test listens, and how to speak as the control domain. */
export interface Target {
  readonly url: string;
  readonly controlToken: string;
  /** Our own backend process, when the suite started one; undefined for an external target. */
  readonly own: HvProcess | undefined;
  /** Ends our own backend (SIGTERM) and returns the files of its run still present after it exited; [] for an external target. */
  stop(): Promise<{ exitCode: number | null; leftFiles: string[] }>;
}

/** The environment variables that select an external target. */
export const TARGET_ENV = { url: 'HDMABUF_CONFORMANCE_URL', token: 'HDMABUF_CONFORMANCE_CONTROL_TOKEN' } as const;

/** True when the suite runs against an external backend. */
export function isExternalTarget(): boolean {
  return process.env[TARGET_ENV.url] !== undefined || process.env[TARGET_ENV.token] !== undefined;
}

/** Selects the target: the external one named by the environment, or a fresh process of our backend. */
export async function startTarget(): Promise<Target> {
  const url = process.env[TARGET_ENV.url];
  const controlToken = process.env[TARGET_ENV.token];
  if (url !== undefined || controlToken !== undefined) {
    if (!url || !controlToken) {
      throw new Error(`set both ${TARGET_ENV.url} and ${TARGET_ENV.token} to test an external backend (or neither, to test ours)`);
    }
    return { url, controlToken, own: undefined, stop: async () => ({ exitCode: 0, leftFiles: [] }) };
  }
  const hv = await spawnHv({ readyTimeoutMs: 30_000 });
  return {
    url: hv.url,
    controlToken: hv.controlToken,
    own: hv,
    async stop() {
      const exit = await hv.child.reap(10_000);
      // hv-main's default shm directory (SPEC 9.3: <shmDir>/<runTag>-d<domid>-*).
      const leftFiles = readdirSync('/dev/shm').filter((n) => n.startsWith(`${hv.runTag}-`));
      return { exitCode: exit.code, leftFiles };
    },
  };
}
