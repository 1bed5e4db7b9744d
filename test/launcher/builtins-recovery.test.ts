/**
 * `hdmabuf run <built-in> --json` for the recovery and scale scenarios:
 * crashes of either side, a delayed unexport with the buffer in use, and
 * many concurrent exports. Each is ok with every leak count 0, including
 * the crash scenarios, and leaves no process and no shared-memory file.
 */
import { describe, expect, it } from 'vitest';
import type { RunResult } from '../../vm-sim/launcher/result.ts';
import { expectRunClean as expectClean } from '../helpers/leaks.ts';

/** The crashed VM is named as killed by the scenario (not as a death), and its traffic still counts: the backend counted it. */
function expectCrashed(result: RunResult, name: string): void {
  expect(result.exits.filter((e) => e.cause !== 'shutdown')).toEqual([expect.objectContaining({ name, role: 'vm', cause: 'killed by the scenario', signal: 'SIGKILL', code: null })]);
  expect(result.stats).toMatchObject({ bytesCopied: 0 });
  expect(result.stats.wireBytes).toBeGreaterThan(0);
}

describe('hdmabuf run <built-in> --json: recovery and scale', () => {
  it('importer-crash: the exporter recovers and frees everything', async () => {
    expectCrashed(await expectClean('importer-crash'), 'compositor');
  }, 90_000);

  it('exporter-crash: the mapping stays readable until released, then the dead domain is gone', async () => {
    expectCrashed(await expectClean('exporter-crash'), 'render');
  }, 90_000);

  it('delayed-unexport: nothing revoked while the buffer is in use', async () => {
    await expectClean('delayed-unexport', ['--param', 'delayMs=800']);
  }, 90_000);

  it('many-exports: all live at once, then all released', async () => {
    const { stats } = await expectClean('many-exports', ['--param', 'count=2000']);
    expect(stats.exports).toMatchObject({ count: 2000 });
  }, 120_000);
});
