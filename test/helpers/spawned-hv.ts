/**
 * A backend process per test, for the tests that talk to it with their own
 * clients: afterEach closes the clients the test registered, reaps the
 * backend (it must exit 0 on SIGTERM) and checks that none of its
 * shared-memory files remain.
 */
import { readdirSync } from 'node:fs';
import { afterEach, expect } from 'vitest';
import { spawnHv, type HvProcess, type SpawnHvOptions } from '../../vm-sim/process/spawn/spawn-hv.ts';

/** What a test holds: start() spawns its backend, clients are closed first at teardown. */
export interface SpawnedHv {
  start(opts?: SpawnHvOptions): Promise<HvProcess>;
  readonly clients: { close(): unknown }[];
}

/** Registers the teardown in the calling test file; returns the per-test handle. */
export function useSpawnedHv(): SpawnedHv {
  let hv: HvProcess | undefined;
  const clients: { close(): unknown }[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    if (hv) {
      const { runTag } = hv;
      const exit = await hv.child.reap(10_000);
      hv = undefined;
      expect(exit.code).toBe(0);
      expect(readdirSync('/dev/shm').filter((n) => n.startsWith(`${runTag}-`))).toEqual([]);
    }
  });
  return {
    clients,
    async start(opts) {
      hv = await spawnHv(opts);
      return hv;
    },
  };
}
