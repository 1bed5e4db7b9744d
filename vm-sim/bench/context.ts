/**
 * What every figure runs on: one run (a backend and the VMs), the same for
 * all figures, and the helpers that share a buffer, copy bytes over ECHO,
 * and tidy up between trials so that each trial starts from the same state.
 */
import type { Run } from '../launcher/run.ts';
import type { VmHandle } from '../launcher/vm-handle.ts';
import { median } from '../process/bench/sim-stats.ts';
import type { BenchConfig } from './config.ts';

/** An exporter VM and an importer VM whose sessions speak one protocol version. */
export interface Pair {
  readonly exporter: VmHandle;
  readonly importer: VmHandle;
  /** The version their sessions negotiated. */
  readonly version: number;
}

/** The run and its roles. */
export interface BenchContext {
  readonly run: Run;
  readonly config: BenchConfig;
  /** Exports everything (the newest version's pair). */
  readonly exporter: VmHandle;
  /** The importer of every figure; also the first of the fan-out. */
  readonly importer: VmHandle;
  /** The pair on the newest version both sides speak (exporter and importer above). */
  readonly newest: Pair;
  /** A pair offering only protocol v1: the same figures on the v1 path, in the same run. */
  readonly v1: Pair;
  /** The fan-out's importers (importer first). */
  readonly fans: readonly VmHandle[];
  log(line: string): void;
}

/** Calls with a long budget: a benchmark phase may take a while on a loaded machine. */
const LONG = 600_000;

/** Allocates a buffer in the exporter and fills it (untimed); returns its dmabuf id. */
export async function allocBuffer(ctx: BenchContext, bytes: number, scattered = false, exporter: VmHandle = ctx.exporter): Promise<{ buf: number; runs: number; nents: number }> {
  const a = await exporter.call<{ buf: number; runs: number; nents: number }>('dmabuf.alloc', { bytes, scattered }, LONG);
  await exporter.call('dmabuf.fill', { buf: a.buf, seed: 1 }, LONG);
  return a;
}

/** Drops a buffer of the exporter. */
export async function freeBuffer(ctx: BenchContext, buf: number, exporter: VmHandle = ctx.exporter): Promise<void> {
  await exporter.call('dmabuf.put', { buf }, LONG);
}

/** Reads and discards every NEW_IMPORT event an importer has queued (so the next share sees its own first). */
export async function drainEvents(vm: VmHandle): Promise<void> {
  for (;;) {
    const e = await vm.call<{ none?: boolean }>('dmabuf.readEvent', { block: false });
    if (e.none) return;
  }
}

/** Unexports and waits until each export is released. */
export async function unexportAll(exporter: VmHandle, hids: readonly string[]): Promise<void> {
  for (const hid of hids) {
    await exporter.call('dmabuf.unexport', { hid }, LONG);
    await exporter.call('dmabuf.waitReleased', { hid, timeoutMs: 60_000 }, LONG);
  }
}

/** A first share, timed on the shared clock: export (to every importer at once) until the last importer has the pages mapped. */
export interface Share {
  us: number;
  /** From the start until the (last) importer read its NEW_IMPORT event: the export and its EXPORT message, µs. */
  toEventUs: number;
  exporter: VmHandle;
  hids: string[];
  fds: number[];
}

/** Shares `buf` of `exporter` (default: the newest pair's) with the importers and returns the time; the shares stay open (see closeShare). */
export async function shareOnce(ctx: BenchContext, buf: number, importers: readonly VmHandle[], exporter: VmHandle = ctx.exporter): Promise<Share> {
  // The importers wait for their NEW_IMPORT first: they react as soon as the export arrives.
  const waiting = importers.map((i) => i.call<{ t1: number; eventAt: number; hid: string; fd: number }>('bench.importNext', { timeoutMs: 60_000 }, LONG));
  const to = importers.length === 1 ? importers[0]!.domid : importers.map((i) => i.domid);
  const start = await exporter.call<{ t0: number }>('bench.shareStart', { buf, to }, LONG);
  // The export's own outcome is asked for once the importers are done, so that nothing wakes the
  // launcher during the share; a failed export then explains why the importers waited in vain.
  const imported = await Promise.allSettled(waiting);
  const { hids } = await exporter.call<{ hids: string[] }>('bench.shareEnd', {}, LONG);
  const got = imported.map((r) => { if (r.status === 'rejected') throw r.reason; return r.value; });
  return { us: Math.max(...got.map((g) => g.t1)) - start.t0, toEventUs: Math.max(...got.map((g) => g.eventAt)) - start.t0, exporter, hids, fds: got.map((g) => g.fd) };
}

/** Closes the importers' fds and unexports. */
export async function closeShare(share: Share, importers: readonly VmHandle[]): Promise<void> {
  await Promise.all(importers.map((i, k) => i.call('dmabuf.release', { fd: share.fds[k] }, LONG)));
  await unexportAll(share.exporter, share.hids);
}

/** First-share times in µs over `trials` (after one warm-up), closing each share. */
export async function shareTimes(ctx: BenchContext, buf: number, importers: readonly VmHandle[], trials: number, exporter: VmHandle = ctx.exporter): Promise<number[]> {
  const times: number[] = [];
  for (let t = -1; t < trials; t++) {
    const s = await shareOnce(ctx, buf, importers, exporter);
    await closeShare(s, importers);
    if (t >= 0) times.push(s.us);
  }
  return times;
}

/**
 * Untimed first shares of a 1 MiB buffer on each pair, before any figure:
 * every process's code on the share path is then as warm as the memcpy
 * baseline's (without it, the first figures of a run paid for V8 compiling
 * that path, and the same 1080p share measured 2.6 times slower as the
 * run's first figure than later in the same run).
 */
export async function warmUp(ctx: BenchContext): Promise<void> {
  for (const pair of [ctx.newest, ctx.v1]) {
    await drainEvents(pair.importer);
    const a = await allocBuffer(ctx, 1024 * 1024, false, pair.exporter);
    await shareTimes(ctx, a.buf, [pair.importer], ctx.config.warmupShares, pair.exporter);
    await freeBuffer(ctx, a.buf, pair.exporter);
  }
}

/** Median first-share time over `trials` (after one warm-up), closing each share. */
export async function medianShare(ctx: BenchContext, buf: number, importers: readonly VmHandle[], trials: number): Promise<number> {
  return median(await shareTimes(ctx, buf, importers, trials));
}

/** One timed trial of some work, in µs. */
export type Trial = () => Promise<number>;

/**
 * Runs `steps` round-robin, one trial of each per round (A B C A B C ...),
 * after one untimed round, so that a slow patch of the machine hits a
 * figure and its baseline alike; µs per trial of each step, in step order.
 */
export async function interleaved<T extends readonly Trial[]>(trials: number, steps: readonly [...T]): Promise<{ [K in keyof T]: number[] }> {
  const out = steps.map((): number[] => []);
  for (let t = -1; t < trials; t++) {
    for (const [k, step] of steps.entries()) {
      const us = await step();
      if (t >= 0) out[k]!.push(us);
    }
  }
  return out as { [K in keyof T]: number[] };
}

/**
 * A first share of `buf` on `pair`, closed afterwards, after an untimed one
 * (as the memcpy trial copies once untimed first): one trial for
 * interleaved, each as warm as in a run of shares alone, whatever ran
 * before it (a memcpy of the same buffer evicts what a share keeps warm).
 */
export function shareTrial(ctx: BenchContext, pair: Pair, buf: number): Trial {
  const once = async (): Promise<number> => {
    await drainEvents(pair.importer);
    const s = await shareOnce(ctx, buf, [pair.importer], pair.exporter);
    await closeShare(s, [pair.importer]);
    return s.us;
  };
  return async () => {
    await once();
    return once();
  };
}

/** First shares of two buffers on two pairs, trials interleaved (A B A B ...); µs per trial. */
export function alternatedShares(ctx: BenchContext, a: { pair: Pair; buf: number }, b: { pair: Pair; buf: number }, trials: number): Promise<[number[], number[]]> {
  return interleaved(trials, [shareTrial(ctx, a.pair, a.buf), shareTrial(ctx, b.pair, b.buf)]);
}
