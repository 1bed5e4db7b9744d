/**
 * A VM offers the protocol version its launch asks for (DomainLaunch.maxVersion,
 * carried in VmConfig to HELLO): the bench measures the v1 path and the newest
 * path in one run this way. A bad maxVersion in the configuration is refused.
 */
import { describe, expect, it } from 'vitest';
import { MAX_VERSION, MIN_VERSION } from '../../protocol/index.ts';
import { Run } from '../../vm-sim/launcher/run.ts';
import { parseVmConfig } from '../../vm-sim/process/spawn/vm-config.ts';

const BASE = { url: 'ws://127.0.0.1:1', domid: 1, token: 't', ramPath: '/dev/shm/x', grantTablePath: '/dev/shm/y', memPages: 16, maxGrantFrames: 4 };

describe('DomainLaunch.maxVersion', () => {
  it('a VM launched with maxVersion 1 speaks v1; one launched without speaks the newest version', async () => {
    const run = await Run.start({ readyTimeoutMs: 120_000 });
    try {
      const [old, cur] = await run.addDomains([{ name: 'old', memPages: 64, maxVersion: MIN_VERSION }, { name: 'cur', memPages: 64 }]);
      expect(await old!.call('bench.version')).toEqual({ version: MIN_VERSION });
      expect(await cur!.call('bench.version')).toEqual({ version: MAX_VERSION });
    } finally {
      const report = await run.stop();
      expect(report.leaks).toEqual({ busyGrants: 0, mappings: 0, processes: 0, shmFiles: 0 });
    }
  }, 120_000);

  it('parseVmConfig carries maxVersion and refuses one that is not a version', () => {
    expect(parseVmConfig(JSON.stringify({ ...BASE, maxVersion: 1 })).maxVersion).toBe(1);
    expect(parseVmConfig(JSON.stringify(BASE)).maxVersion).toBeUndefined();
    expect(() => parseVmConfig(JSON.stringify({ ...BASE, maxVersion: 0 }))).toThrow(/maxVersion/);
    expect(() => parseVmConfig(JSON.stringify({ ...BASE, maxVersion: 1.5 }))).toThrow(/maxVersion/);
  });
});
