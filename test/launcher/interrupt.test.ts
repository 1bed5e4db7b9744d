/**
 * Interrupting a run, with real processes, as a user would:
 *   - Ctrl-C in a terminal (SIGINT to the launcher's whole process group):
 *     the children are in groups of their own, so only the launcher sees it;
 *     it stops the run through the close cascade and reports MEASURED leaks;
 *   - a second Ctrl-C right after the first: every child is killed, and yet
 *     no process and no shared-memory file of the run remains;
 *   - the output piped into a reader that goes away (`| head`): EPIPE stops
 *     the run quietly through the same cascade (exit 141, no stack trace),
 *     and nothing remains.
 * Each test waits for the run to be in the middle of its frame loop (a
 * progress line), never for a time.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { RunResult } from '../../vm-sim/launcher/result.ts';
import { shmFiles, startCli, stillRunning } from './cli.ts';

function pidsIn(line: string): number[] {
  return [...line.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]));
}

const tag = (what: string): string => `hdmabuf-test-${what}-${randomBytes(4).toString('hex')}`;

describe('interrupting a run', () => {
  it('Ctrl-C to the process group: one stop through the cascade, leaks measured', async () => {
    const runTag = tag('ctrlc');
    const cli = startCli(['run', 'compositor', '--json', '--run-tag', runTag, '--param', 'frames=1000000'], { ownGroup: true });
    const pids = pidsIn(await cli.line(/^started: /));
    await cli.line(/^render: frames \d+\/1000000\b/);
    process.kill(-cli.child.pid!, 'SIGINT'); // the whole foreground group, as a terminal does
    const exit = await cli.exited;
    expect(exit.code).toBe(130);
    const result = JSON.parse(cli.stdout) as RunResult;
    expect(result.checks.find((c) => c.name === 'run interrupted')).toMatchObject({ ok: false });
    // Measured, not "not measured" (-1): the children were still up for HV_STATS and the cascade.
    for (const n of Object.values(result.leaks)) expect(n).toBeGreaterThanOrEqual(0);
    expect(result.leaks).toMatchObject({ processes: 0, shmFiles: 0 });
    // Every child ended through the cascade: none died of the Ctrl-C.
    expect(result.exits.filter((e) => e.cause !== 'shutdown')).toEqual([]);
    expect(stillRunning(pids)).toEqual([]);
    expect(shmFiles(runTag)).toEqual([]);
  }, 90_000);

  it('a second Ctrl-C kills every child and still leaves no process and no shm file', async () => {
    const runTag = tag('ctrlc2');
    const cli = startCli(['run', 'compositor', '--json', '--run-tag', runTag, '--param', 'frames=1000000'], { ownGroup: true });
    const pids = pidsIn(await cli.line(/^started: /));
    await cli.line(/^render: frames \d+\/1000000\b/);
    expect(shmFiles(runTag).length).toBeGreaterThan(0);
    process.kill(-cli.child.pid!, 'SIGINT');
    await cli.line(/^SIGINT: stopping the run/); // the first one was taken: now the impatient second
    process.kill(-cli.child.pid!, 'SIGINT');
    const exit = await cli.exited;
    expect(exit.code).toBe(130);
    expect(cli.stderr).toMatch(/SIGINT again: killing every process of the run/);
    expect(stillRunning(pids)).toEqual([]);
    expect(shmFiles(runTag)).toEqual([]);
  }, 90_000);

  it('EPIPE on stdout (the reader went away) stops the run quietly and leaves nothing', async () => {
    const runTag = tag('epipe');
    // Without --json the progress lines go to stdout: the first write after the reader left meets EPIPE.
    const cli = startCli(['run', 'compositor', '--run-tag', runTag, '--param', 'frames=1000000']);
    const pids = pidsIn(await cli.line(/^started: /));
    await cli.line(/^render: frames \d+\/1000000\b/);
    cli.child.stdout!.destroy(); // like `| head` exiting: the pipe's read end is closed
    const exit = await cli.exited;
    expect(exit.code).toBe(141);
    expect(cli.stderr).not.toMatch(/EPIPE|\n\s+at /); // no stack trace, no error printed
    expect(stillRunning(pids)).toEqual([]);
    expect(shmFiles(runTag)).toEqual([]);
  }, 90_000);
});
