/**
 * Runs the hdmabuf CLI as a real child process (node vm-sim/bin/hdmabuf.js,
 * one process: the launcher), collects its output, and makes sure it is
 * gone after each test: afterEach SIGKILLs any CLI still running and waits
 * for its exit; the launcher's own children exit when it does (their IPC
 * channel closes), which the tests check with the pids the run reports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import type { RunResult } from '../../vm-sim/launcher/result.ts';
import { isRunning } from '../../vm-sim/process/spawn/child.ts';

/** The CLI entry (what the package bin runs). */
export const BIN = fileURLToPath(new URL('../../vm-sim/bin/hdmabuf.js', import.meta.url));

const running = new Set<ChildProcess>();

afterEach(async () => {
  await Promise.all([...running].map((c) => new Promise<void>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) { resolve(); return; }
    c.once('close', () => resolve());
    c.kill('SIGKILL');
  })));
  running.clear();
});

/** A CLI process, with its output so far. */
export interface CliProcess {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  /** Resolves when it exited and its output pipes closed. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first stderr/stdout line matching `re` (or rejects when the CLI exits first). */
  line(re: RegExp): Promise<string>;
}

/**
 * Starts the CLI. `ownGroup`: in a process group of its own, as a shell
 * starts a foreground job, so that a test can signal the whole group like a
 * Ctrl-C in a terminal (process.kill(-pid)) without reaching the test runner.
 */
export function startCli(args: string[], options: { ownGroup?: boolean } = {}): CliProcess {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' }, detached: options.ownGroup === true });
  running.add(child);
  const cli: CliProcess = {
    child, stdout: '', stderr: '',
    exited: new Promise((resolve) => child.once('close', (code, signal) => { running.delete(child); resolve({ code, signal }); })),
    line(re: RegExp): Promise<string> {
      return new Promise((resolve, reject) => {
        const look = (): boolean => {
          const hit = `${cli.stderr}\n${cli.stdout}`.split('\n').find((l) => re.test(l));
          if (hit !== undefined) { resolve(hit); return true; }
          return false;
        };
        if (look()) return;
        const onData = (): void => { if (look()) off(); };
        const onExit = (): void => { off(); if (!look()) reject(new Error(`CLI exited before printing ${re}; stderr:\n${cli.stderr.slice(-3000)}`)); };
        const off = (): void => {
          child.stdout!.off('data', onData);
          child.stderr!.off('data', onData);
          child.off('exit', onExit);
        };
        child.stdout!.on('data', onData);
        child.stderr!.on('data', onData);
        child.once('exit', onExit);
      });
    },
  };
  child.stdout!.on('data', (d: Buffer) => { cli.stdout += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { cli.stderr += d.toString(); });
  return cli;
}

/** Runs the CLI to its end. */
export async function runCli(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const cli = startCli(args);
  const exit = await cli.exited;
  return { ...exit, stdout: cli.stdout, stderr: cli.stderr };
}

/** Runs `hdmabuf run <scenario> --json ...` and parses the one JSON object it prints. */
export async function runJson(scenario: string, extra: string[] = []): Promise<{ code: number | null; result: RunResult; stderr: string }> {
  const r = await runCli(['run', scenario, '--json', ...extra]);
  let result: RunResult;
  try {
    result = JSON.parse(r.stdout) as RunResult;
  } catch {
    throw new Error(`stdout is not one JSON object (exit ${r.code}):\n${r.stdout.slice(0, 2000)}\nstderr:\n${r.stderr.slice(-3000)}`);
  }
  return { code: r.code, result, stderr: r.stderr };
}

/** Every pid a result names (hv and VMs). */
export function pidsOf(result: RunResult): number[] {
  const s = result.stats as { pids?: { hv: number }; domains?: Array<{ pid: number }> };
  return [...(s.pids ? [s.pids.hv] : []), ...(s.domains ?? []).map((d) => d.pid)];
}

/** Files of /dev/shm with this run tag. */
export function shmFiles(runTag: string): string[] {
  return readdirSync('/dev/shm').filter((n) => n.startsWith(`${runTag}-`));
}

/** Asserts-friendly view of a failed result: the failing checks. */
export function failing(result: RunResult): string[] {
  return result.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
}

/** The pids among `pids` still running. */
export function stillRunning(pids: readonly number[]): number[] {
  return pids.filter(isRunning);
}
