/**
 * The backend as a process (vm-sim/hv-main.ts): reports ready over IPC or
 * stdout, and removes every file of its run when it is told to stop or its
 * parent goes away.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DOMAIN_CREATE } from '../../protocol/messages/control.ts';
import { HvClient } from '../../src/transport/hv-client.ts';

const script = fileURLToPath(new URL('../../vm-sim/hv-main.ts', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

interface Ready { type: 'ready'; url: string; controlToken: string; runTag: string; pid: number }

/** Kills the child if the test left it running (each test reaps its own: they run concurrently). */
async function reap(c: ChildProcess): Promise<void> {
  if (c.exitCode === null && c.signalCode === null) {
    c.kill('SIGKILL');
    await exited(c);
  }
}

function exited(c: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve({ code: c.exitCode, signal: c.signalCode });
  return new Promise((resolve) => c.once('exit', (code, signal) => resolve({ code, signal })));
}

function filesOf(runTag: string): string[] {
  return readdirSync('/dev/shm').filter((n) => n.startsWith(`${runTag}-`));
}

/** Creates a domain through the process, so that it has files to remove. */
async function populate(ready: Ready): Promise<void> {
  const ctl = await HvClient.connect({ url: ready.url, domid: 0, token: ready.controlToken });
  await ctl.call(DOMAIN_CREATE, { name: 'x', memPages: 4 });
  await ctl.close();
  expect(filesOf(ready.runTag)).toHaveLength(2);
}

// Both cases start a process (tsx startup dominates): run them side by side.
describe.concurrent('hv-main', () => {
  it('reports ready over IPC and cleans up when the parent disconnects', async ({ onTestFinished }) => {
    const runTag = `hdmabuf-test-hvmain-${process.pid}-ipc`;
    const child = fork(script, ['--run-tag', runTag], { cwd: repoRoot, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    onTestFinished(() => reap(child));
    const ready = await new Promise<Ready>((resolve, reject) => {
      child.once('message', (m) => resolve(m as Ready));
      child.once('exit', (code) => reject(new Error(`exited ${code}`)));
    });
    expect(ready).toMatchObject({ type: 'ready', runTag, pid: child.pid });
    expect(ready.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    await populate(ready);
    child.disconnect();
    expect(await exited(child)).toEqual({ code: 0, signal: null });
    expect(filesOf(runTag)).toEqual([]);
  });

  it('prints ready on stdout without IPC and cleans up on SIGTERM', async ({ onTestFinished }) => {
    const runTag = `hdmabuf-test-hvmain-${process.pid}-stdio`;
    const child = spawn(process.execPath, ['--import', 'tsx', script, '--port', '0'], {
      cwd: repoRoot, env: { ...process.env, HDMABUF_RUN_TAG: runTag }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    onTestFinished(() => reap(child));
    const line = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve));
    const ready = JSON.parse(line) as Ready;
    expect(ready).toMatchObject({ type: 'ready', runTag, pid: child.pid });
    await populate(ready);
    child.kill('SIGTERM');
    expect(await exited(child)).toEqual({ code: 0, signal: null });
    expect(filesOf(runTag)).toEqual([]);
  });
});
