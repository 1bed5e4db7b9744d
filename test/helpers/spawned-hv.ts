/**
 * A backend process per test, for the tests that talk to it with their own
 * raw clients: afterEach closes the clients made here, reaps the
 * backend (it must exit 0 on SIGTERM) and checks that none of its
 * shared-memory files remain.
 */
import { readdirSync } from 'node:fs';
import { afterEach, expect } from 'vitest';
import { DOMAIN_CREATE } from '../../protocol/messages/control.ts';
import type { ResponseOf } from '../../protocol/index.ts';
import { HvClient } from '../../src/transport/hv-client.ts';
import { spawnHv, type HvProcess, type SpawnHvOptions } from '../../vm-sim/process/spawn/spawn-hv.ts';
import { RawClient } from '../../vm-sim/stress/raw-client.ts';

/** A guest domain as DOMAIN_CREATE answered it, and its raw connection (HELLO done). */
export interface RawDomain {
  readonly created: ResponseOf<typeof DOMAIN_CREATE>;
  readonly client: RawClient;
}

/** What a test holds: start() spawns its backend; the clients made here are closed first at teardown. */
export interface SpawnedHv {
  start(opts?: SpawnHvOptions): Promise<HvProcess>;
  /** start(), the control connection, and one raw connected domain per name (16 pages each), all closed at teardown. */
  startWithRawDomains(names: readonly string[], opts?: SpawnHvOptions): Promise<{ hv: HvProcess; control: HvClient; domains: RawDomain[] }>;
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
  const start = async (opts?: SpawnHvOptions): Promise<HvProcess> => {
    hv = await spawnHv(opts);
    return hv;
  };
  return {
    start,
    async startWithRawDomains(names, opts) {
      const started = await start(opts);
      const control = await HvClient.connect({ url: started.url, domid: 0, token: started.controlToken, name: 'control' });
      clients.push(control);
      const domains: RawDomain[] = [];
      for (const name of names) {
        const created = await control.call(DOMAIN_CREATE, { name, memPages: 16 });
        const client = await RawClient.connect(started.url, created.domid, created.token);
        clients.push({ close: () => client.terminate() });
        domains.push({ created, client });
      }
      return { hv: started, control, domains };
    },
  };
}
