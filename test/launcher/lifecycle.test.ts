/**
 * The launcher's lifecycle with real processes:
 *   - SIGKILL of the launcher in the middle of a run: its children exit by
 *     themselves (their IPC channel closes) and the backend removes the
 *     run's shared-memory files on its way out; the test polls the exit of
 *     every pid the run reported, within a deadline, then looks at /dev/shm;
 *   - SIGINT: the run stops through the normal cascade, the result is still
 *     printed (not ok, exit 130), nothing remains.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { RunResult } from '../../vm-sim/launcher/result.ts';
import { shmFiles, startCli, stillRunning } from './cli.ts';
import { holdsWithin } from '../helpers/wait.ts';

function pidsIn(line: string): number[] {
  return [...line.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]));
}

describe('launcher lifecycle', () => {
  it('SIGKILL of the launcher mid-run leaves no process and no shm file of the run', async () => {
    const tag = `hdmabuf-test-kill-${randomBytes(4).toString('hex')}`;
    const cli = startCli(['run', 'compositor', '--json', '--run-tag', tag, '--param', 'frames=1000000']);
    const started = await cli.line(/^started: /);
    const pids = pidsIn(started);
    expect(pids).toHaveLength(4); // launcher, hv, render, compositor
    expect(pids[0]).toBe(cli.child.pid);
    // In the middle of the frame loop: buffers exported, imported and mapped.
    await cli.line(/^render: frames \d+\/1000000\b/);
    expect(shmFiles(tag).length).toBeGreaterThan(0);

    cli.child.kill('SIGKILL');
    expect((await cli.exited).signal).toBe('SIGKILL');
    const children = pids.slice(1);
    const gone = await holdsWithin(() => stillRunning(children).length === 0, 20_000);
    expect(stillRunning(children)).toEqual([]);
    expect(gone).toBe(true);
    expect(shmFiles(tag)).toEqual([]);
  }, 60_000);

  it('SIGINT stops the run through the close cascade and still reports', async () => {
    const tag = `hdmabuf-test-int-${randomBytes(4).toString('hex')}`;
    const cli = startCli(['run', 'compositor', '--json', '--run-tag', tag, '--param', 'frames=1000000']);
    const pids = pidsIn(await cli.line(/^started: /));
    await cli.line(/^render: frames \d+\/1000000\b/);
    cli.child.kill('SIGINT');
    const exit = await cli.exited;
    expect(exit.code).toBe(130);
    const result = JSON.parse(cli.stdout) as RunResult;
    expect(result.ok).toBe(false);
    expect(result.checks.find((c) => c.name === 'run interrupted')).toMatchObject({ ok: false });
    // Interrupted mid-frame: the compositor still mapped the buffers when HV_STATS was taken; after it, nothing remains.
    expect(result.leaks).toMatchObject({ processes: 0, shmFiles: 0 });
    expect(stillRunning(pids)).toEqual([]);
    expect(shmFiles(tag)).toEqual([]);
  }, 60_000);
});
