/**
 * Dynamic-sharing commands of a VM process (SPEC.md 11.8), part of the
 * dmabuf module:
 *
 *   dmabuf.move     {buf | hid, wait?, timeoutMs?}     -> one move's result (timings, generation, what it waited for)
 *   dmabuf.moveLoop {buf | hid, count, wait?}          -> `count` moves back to back, with per-move timings
 *   dmabuf.pin      {buf | fd}                         -> {pins, generation}: the pages stay put until unpin
 *   dmabuf.unpin    {buf | fd}                         -> {pins, generation}
 *
 * `buf` names a buffer of this VM (dmabuf.alloc with movable: true), `hid`
 * one of its exports, `fd` an fd of an import (pinning it pins the
 * exporter's buffer through the importer's remote-sync `pin`).
 */
import type { DmaBuf } from '../../../src/dmabuf/dma-buf.ts';
import type { MoveBlocker } from '../../../src/dmabuf/move-gate.ts';
import type { MoveOptions, MoveResult } from '../../../src/dmabuf/move.ts';
import { argBool, argInt } from './args.ts';
import type { CommandHandler, VmContext } from './commands.ts';
import { argHid, badArg, st } from './dmabuf-state.ts';

/** The buffer to move: `buf` (own buffer) or `hid` (one of its exports). */
function moveTarget(ctx: VmContext, args: Record<string, unknown>): DmaBuf {
  const s = st(ctx);
  if (args.buf !== undefined) return s.bufs.get(args.buf).buf;
  if (args.hid !== undefined) {
    const e = s.driver.exporter.find(argHid(args));
    if (!e) throw Object.assign(new Error(`no export ${String(args.hid)} in this VM`), { code: 'ERR_UNKNOWN_BUFFER' });
    return e.buf;
  }
  throw badArg('give buf or hid');
}

/** The buffer or fd to pin. */
function pinTarget(ctx: VmContext, args: Record<string, unknown>): DmaBuf<unknown> {
  const s = st(ctx);
  if (args.buf !== undefined) return s.bufs.get(args.buf).buf;
  if (args.fd !== undefined) return s.fds.get(args.fd).buf;
  throw badArg('give buf or fd');
}

function moveOptions(args: Record<string, unknown>): MoveOptions {
  return { wait: argBool(args, 'wait', true), ...(args.timeoutMs !== undefined ? { timeoutMs: argInt(args, 'timeoutMs') } : {}) };
}

/** min / median / mean / max of some milliseconds, rounded to microseconds. */
function spread(ms: number[]): { min: number; median: number; mean: number; max: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  const r = (x: number): number => Math.round(x * 1000) / 1000;
  const mean = sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length);
  return { min: r(sorted[0] ?? 0), median: r(sorted[sorted.length >> 1] ?? 0), mean: r(mean), max: r(sorted[sorted.length - 1] ?? 0) };
}

/** The dynamic-sharing commands, merged into the dmabuf module's. */
export const moveCommands: Readonly<Record<string, CommandHandler>> = {
  /** {buf | hid, wait?, timeoutMs?} -> MoveResult: moves the buffer's pages once (ERR_PINNED / ERR_BUSY with wait: false). */
  'dmabuf.move': async (ctx, args): Promise<MoveResult> => st(ctx).driver.move(moveTarget(ctx, args), moveOptions(args)),

  /**
   * {buf | hid, count, wait?} -> {moves, generation, moveMs, totalMs, waited: {pinned, cpuAccess}, pages}:
   * `count` moves one after the other. moveMs: from start (after waiting) to old pages freed; totalMs: with the wait.
   */
  'dmabuf.moveLoop': async (ctx, args) => {
    const buf = moveTarget(ctx, args);
    const count = argInt(args, 'count');
    const opts = moveOptions(args);
    const moveMs: number[] = [];
    const totalMs: number[] = [];
    const phases = { prepare: [] as number[], copy: [] as number[], notify: [] as number[], retire: [] as number[] };
    const waited: Record<MoveBlocker, number> = { pinned: 0, 'cpu-access': 0, moving: 0 };
    let pages = 0;
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      const r = await st(ctx).driver.move(buf, opts);
      moveMs.push(r.moveMs);
      totalMs.push(r.moveMs + r.waitedMs);
      phases.prepare.push(r.prepareMs);
      phases.copy.push(r.copyMs);
      phases.notify.push(r.notifyMs);
      phases.retire.push(r.retireMs);
      for (const b of r.waitedFor) waited[b]++;
      pages = r.pages;
    }
    return {
      moves: count, generation: buf.generation, pages, elapsedMs: performance.now() - t0,
      moveMs: spread(moveMs), totalMs: spread(totalMs),
      phasesMs: { prepare: spread(phases.prepare), copy: spread(phases.copy), notify: spread(phases.notify), retire: spread(phases.retire) },
      waited: { pinned: waited.pinned, cpuAccess: waited['cpu-access'], moving: waited.moving },
    };
  },

  /** {buf | fd} -> {pins, generation}: pins (an fd: through the exporter, answered once any move in progress ended). */
  'dmabuf.pin': async (ctx, args) => {
    const buf = pinTarget(ctx, args);
    await buf.pin();
    return { pins: buf.use().pins, generation: buf.generation };
  },

  /** {buf | fd} -> {pins, generation}: undoes one pin. */
  'dmabuf.unpin': async (ctx, args) => {
    const buf = pinTarget(ctx, args);
    await buf.unpin();
    return { pins: buf.use().pins, generation: buf.generation };
  },
};
