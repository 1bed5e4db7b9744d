/**
 * The process harness itself: a child counts as started only when it says
 * ready; one that fails or stays silent is reported with its output and
 * reaped; reaping escalates to SIGKILL; VM errors come back with their code;
 * and children exit on their own when their launcher dies.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DOMAIN_CREATE } from '../../protocol/messages/control.ts';
import { isRunning, liveChildren, ManagedChild } from '../../vm-sim/process/spawn/child.ts';
import { spawnVm } from '../../vm-sim/process/spawn/spawn-vm.ts';
import { startRun, startVm } from './harness.ts';

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const anyReady = (msg: Record<string, unknown>): boolean => msg.type === 'ready';

describe('process harness', () => {
  it('reports a child that exits before ready, with its exit and output, and leaves nothing running', async () => {
    const err = await ManagedChild.start({ name: 'failing', script: fixture('child.ts'), args: ['fail'], isReady: anyReady }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/failing: exited before ready \(code 7\).*\n.*boom: cannot start/s);
    expect(liveChildren()).toEqual([]);
  });

  it('gives up on a silent child after the ready timeout and reaps it', async () => {
    const err = await ManagedChild.start({ name: 'silent', script: fixture('child.ts'), args: ['silent'], isReady: anyReady, readyTimeoutMs: 1000 })
      .catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/silent: not ready within 1000 ms/);
    expect(liveChildren()).toEqual([]);
  });

  it('reaps a child that ignores SIGTERM with SIGKILL', async () => {
    const child = await ManagedChild.start({ name: 'stubborn', script: fixture('child.ts'), args: ['stubborn'], isReady: anyReady });
    expect(await child.reap(200)).toEqual({ code: null, signal: 'SIGKILL' });
    expect(isRunning(child.pid)).toBe(false);
  });

  it('a VM with a bad token fails to boot and says why; VM errors come back with code and message', async () => {
    const run = await startRun();
    const created = await run.control.call(DOMAIN_CREATE, { name: 'x', memPages: 64 });
    const err = await spawnVm({ url: run.hv.url, ...created, token: 'not-the-token', memPages: 64 }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/exited before ready \(code 1\)[\s\S]*ERR_BAD_TOKEN/);

    const vm = await startVm(run, 'y', 64);
    await expect(vm.call('no.such.command')).rejects.toMatchObject({ code: 'ERR_UNKNOWN_COMMAND', cmd: 'no.such.command' });
    await expect(vm.call('mem.alloc', { pages: 1000 })).rejects.toMatchObject({ code: 'ERR_NO_MEMORY', message: expect.stringMatching(/cannot allocate 1000 pages/) });
    await expect(vm.call('mem.alloc', { pages: 'many' })).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
    await expect(vm.call('map.info', { map: 42 })).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT', message: expect.stringMatching(/no mapping 42/) });
    expect(await vm.shutdown()).toEqual({ code: 0, signal: null });
  });

  it('children exit on their own when their launcher is killed, and the backend removes its files', async () => {
    const launcher = spawn(process.execPath, ['--import', 'tsx', fixture('launcher.ts')], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      let err = '';
      launcher.stderr.on('data', (c: Buffer) => { err += c.toString(); });
      // Every holder of the stdout pipe (launcher, hv, VM) must be gone before it closes.
      const allClosed = new Promise<void>((resolve) => launcher.stdout.on('close', resolve));
      const line = await new Promise<string>((resolve, reject) => {
        launcher.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          const nl = out.indexOf('\n');
          if (nl >= 0) resolve(out.slice(0, nl));
        });
        launcher.once('exit', (code) => reject(new Error(`launcher exited (${code}): ${err}`)));
      });
      const { hvPid, vmPid, runTag } = JSON.parse(line) as { hvPid: number; vmPid: number; runTag: string };
      expect(isRunning(hvPid) && isRunning(vmPid)).toBe(true);
      expect(readdirSync('/dev/shm').filter((n) => n.startsWith(runTag)).length).toBeGreaterThan(0);
      launcher.kill('SIGKILL');
      await allClosed;
      expect([hvPid, vmPid].filter(isRunning)).toEqual([]);
      expect(readdirSync('/dev/shm').filter((n) => n.startsWith(runTag))).toEqual([]);
    } finally {
      launcher.kill('SIGKILL');
    }
  });
});
