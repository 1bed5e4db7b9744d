/**
 * `hdmabuf run <built-in> --json` for the sharing scenarios: each is ok,
 * every leak count is 0, and after the CLI exits none of the run's
 * processes runs and none of its shared-memory files exists. Sizes and
 * frame counts the issue does not fix are reduced to keep the suite short.
 */
import { describe, expect, it } from 'vitest';
import { expectRunClean } from '../helpers/leaks.ts';
import { pidsOf } from './cli.ts';

async function runSharing(scenario: string, extra: string[] = []): Promise<Record<string, unknown>> {
  const result = await expectRunClean(scenario, extra);
  expect(Object.keys(result).sort()).toEqual(['checks', 'exits', 'leaks', 'ok', 'scenario', 'stats']);
  for (const c of result.checks) expect(Object.keys(c).sort()).toEqual(['detail', 'name', 'ok']);
  expect(pidsOf(result).length).toBeGreaterThanOrEqual(3);
  return result.stats;
}

describe('hdmabuf run <built-in> --json: sharing', () => {
  it('compositor (as npm start runs it): 300 frames handed off and verified, nothing copied, nothing leaked', async () => {
    const stats = await runSharing('compositor');
    expect(stats).toMatchObject({ framesHandedOff: 300, framesVerified: 300, bytesCopied: 0, bytesShared: 3 * 1920 * 1080 * 4 });
    const h = stats.handoff as { latencyUs: { p50: number; p99: number } };
    expect(h.latencyUs.p50).toBeGreaterThan(0);
    expect(h.latencyUs.p99).toBeGreaterThanOrEqual(h.latencyUs.p50);
  }, 90_000);

  it('fan-out: every importer reads the same pages', async () => {
    const stats = await runSharing('fan-out', ['--param', 'importers=3', '--param', 'width=640', '--param', 'height=480']);
    expect(stats).toMatchObject({ importers: 3, importsMapped: 3, bytesCopied: 0 });
  }, 90_000);

  it('big-buffer: 257 MiB with a larger grant table and more than one map batch', async () => {
    const stats = await runSharing('big-buffer');
    // Over v2 (the default) one GNTTAB_MAP_DIRECTORY maps all 65,792 pages (SPEC 7.7); v1's batches are counted in dataBatches.
    expect(stats.bigBuffer).toMatchObject({ pages: 65_792, dataBatches: 2, mapRequests: 1, directoryMaps: 1 });
  }, 120_000);
});
