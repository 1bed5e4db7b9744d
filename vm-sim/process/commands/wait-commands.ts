/**
 * Commands that block until a state of this VM is reached, so that a test
 * waits for the event instead of asking again and again (issue 10: tests
 * wait for events, never for the clock). Each checks the state at once,
 * then again on every event that can change it, and answers as soon as it
 * holds:
 *
 *   wait.fence.delivered {count, timeoutMs?}           the fence layer has delivered `count` imports so far
 *                                                      (FENCE_EXPORT received, SPEC.md 11A) -> {delivered}
 *                                                      re-checked on each import
 *   wait.fence.leaves    {fence, signalled, timeoutMs?} at least `signalled` leaves of the sync_file holding
 *                                                      `fence` have signalled -> fence.info's answer;
 *                                                      re-checked when a leaf signals
 *   wait.resv.busy       {resv, want, timeoutMs?}       the fence module's reservation object is busy per access
 *                                                      as `want` says ({read?, write?, rw?}: booleans, by poll()
 *                                                      and by an exported sync_file) -> fence.resv.busy's answer;
 *                                                      re-checked when one of its fences signals
 *   wait.dmabuf.busy     {buf|fd, want, timeoutMs?}     the same for a shared buffer (SPEC.md 11A.7-11A.12), on
 *                                                      the exporter's buffer or an importer's fd ->
 *                                                      dmabuf.sync.busy's answer; re-checked when one of its
 *                                                      pending fences signals
 *
 * A fence that is added (a command of a VM, answered once it is stored)
 * makes a buffer busy at once; only a signal makes it idle later, and that
 * is the event these commands wait for.
 *
 * `timeoutMs` (default 10 s) only turns a state that never came into an
 * error: ERR_TIMEOUT, whose message gives the last state seen. It never
 * decides a result that the state would have given.
 */
import type { DmaFence } from '../../../src/fence/dma-fence.ts';
import { DmaFenceCb } from '../../../src/fence/dma-fence.ts';
import { DmaResvUsage, type DmaResv } from '../../../src/fence/dma-resv.ts';
import { SyncFile } from '../../../src/fence/sync-file.ts';
import { unwrapFences } from '../../../src/fence/unwrap.ts';
import type { FenceHost } from '../../../src/fence-remote/fence-host.ts';
import type { DmaBuf } from '../../../src/dmabuf/dma-buf.ts';
import type { DmabufSync } from '../../../src/hyper-dmabuf/sync/index.ts';
import { argInt } from './args.ts';
import type { VmContext, VmModule } from './commands.ts';
import { bufBusy, target } from './dmabuf-sync-commands.ts';
import { resvBusy } from './fence-commands.ts';

/** Default failure bound of a wait, in ms. */
export const WAIT_TIMEOUT_MS = 10_000;

/** An access of IGT's busy checks. */
export type Access = 'read' | 'write' | 'rw';
/** Busy-ness per access, by poll() and by an exported sync_file. */
export type Busy = Record<Access, { poll: boolean; export: boolean }>;

/** One look at the state: whether it holds, what it is, and the event after which to look again. */
interface Look<T> {
  ok: boolean;
  state: T;
  /** Resolves on the next event that can change the state; undefined: none can (then only the timeout ends the wait). */
  next?: { event: Promise<void>; cancel(): void };
}

function waitError(what: string, timeoutMs: number, state: unknown): Error {
  return Object.assign(new Error(`${what} not reached within ${timeoutMs} ms; last state ${JSON.stringify(state)}`), { code: 'ERR_TIMEOUT' });
}

/**
 * Looks at the state, and again after each event `look` names, until it
 * holds; rejects with ERR_TIMEOUT (and the last state) after `timeoutMs`.
 */
export async function untilState<T>(what: string, timeoutMs: number, look: () => Promise<Look<T>> | Look<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(() => { timedOut = true; resolve(); }, timeoutMs);
  });
  try {
    for (;;) {
      const l = await look();
      if (l.ok) return l.state;
      if (timedOut) throw waitError(what, timeoutMs, l.state);
      try {
        await Promise.race([l.next?.event ?? new Promise<void>(() => undefined), timeout]);
      } finally {
        l.next?.cancel();
      }
      if (timedOut) {
        const last = await look();
        if (last.ok) return last.state;
        throw waitError(what, timeoutMs, last.state);
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

/** The first signal among `fences` (a callback on each, removed by cancel); undefined when none is pending. */
export function anySignal(fences: readonly DmaFence[]): Look<unknown>['next'] {
  const queued: Array<[DmaFence, DmaFenceCb]> = [];
  let wake!: () => void;
  const event = new Promise<void>((resolve) => { wake = resolve; });
  let already = false;
  for (const f of fences) {
    const cb = new DmaFenceCb(() => wake());
    // ENOENT: it signalled meanwhile (adding a callback reads an imported fence's page): look again at once.
    if (f.addCallback(cb) === 0) queued.push([f, cb]);
    else already = true;
  }
  if (already) wake();
  else if (queued.length === 0) return undefined;
  return { event, cancel: () => { for (const [f, cb] of queued) f.removeCallback(cb); } };
}

/** The `want` argument: {read?, write?, rw?} booleans, at least one. */
function argWant(args: Record<string, unknown>): Partial<Record<Access, boolean>> {
  const w = args.want;
  const bad = (): Error => Object.assign(new Error('argument want must be an object of read, write and rw booleans (at least one)'), { code: 'ERR_BAD_ARGUMENT' });
  if (typeof w !== 'object' || w === null || Array.isArray(w)) throw bad();
  const entries = Object.entries(w);
  if (entries.length === 0 || !entries.every(([k, v]) => (k === 'read' || k === 'write' || k === 'rw') && typeof v === 'boolean')) throw bad();
  return w as Partial<Record<Access, boolean>>;
}

function matches(b: Busy, want: Partial<Record<Access, boolean>>): boolean {
  return Object.entries(want).every(([k, v]) => b[k as Access].poll === v && b[k as Access].export === v);
}

function timeoutOf(args: Record<string, unknown>): number {
  return argInt(args, 'timeoutMs', WAIT_TIMEOUT_MS);
}

/**
 * Resolves with the busy-ness of a shared buffer (or an importer's fd) once it matches `want`, looking again
 * whenever one of its pending fences signals; ERR_TIMEOUT after `timeoutMs` (wait.dmabuf.busy; tests of the
 * layer in one process call it directly).
 */
export function untilBufBusy(sync: DmabufSync, buf: DmaBuf, want: Partial<Record<Access, boolean>>, timeoutMs = WAIT_TIMEOUT_MS): Promise<Busy> {
  return untilState(`buffer busy as ${JSON.stringify(want)}`, timeoutMs, async () => {
    const state = await bufBusy(sync, buf);
    if (matches(state, want)) return { ok: true, state };
    const pending = await sync.pendingFences(buf, DmaResvUsage.BOOKKEEP);
    return { ok: false, state, next: anySignal(pending.map((p) => p.fence)) };
  });
}

/** What this module uses of the fence module's state. */
interface FenceModuleState {
  host: FenceHost;
  fences: { get(id: unknown): DmaFence };
  resvs: { get(id: unknown): DmaResv };
}

function fenceState(ctx: VmContext): FenceModuleState {
  const s = ctx.state.get('fence') as FenceModuleState | undefined;
  if (!s) throw Object.assign(new Error('this VM has not loaded the fence module'), { code: 'ERR_UNKNOWN_COMMAND' });
  return s;
}

function syncOf(ctx: VmContext): DmabufSync {
  const s = ctx.state.get('dmabuf-sync') as { sync: DmabufSync } | undefined;
  if (!s) throw Object.assign(new Error('this VM has not loaded the dmabuf-sync module'), { code: 'ERR_UNKNOWN_COMMAND' });
  return s.sync;
}

/** The wait command module (loaded last: it reads the other modules' state, each command only if its module is loaded). */
export const waitModule: VmModule = {
  name: 'wait',
  commands: {
    'wait.fence.delivered': (ctx, args) => {
      const host = fenceState(ctx).host;
      const count = argInt(args, 'count');
      return untilState(`${count} fence imports delivered`, timeoutOf(args), () => {
        const delivered = host.stats().inbox.delivered;
        if (delivered >= count) return { ok: true, state: { delivered } };
        let on!: () => void;
        const event = new Promise<void>((resolve) => { on = resolve; host.once('imported', on); });
        return { ok: false, state: { delivered }, next: { event, cancel: () => { host.off('imported', on); } } };
      });
    },

    'wait.fence.leaves': (ctx, args) => {
      const fence = fenceState(ctx).fences.get(args.fence);
      const want = argInt(args, 'signalled');
      return untilState(`${want} signalled leaves of fence ${String(args.fence)}`, timeoutOf(args), () => {
        const file = SyncFile.create(fence);
        const info = file.getInfo({ numFences: file.getInfo().numFences });
        const state = { status: fence.getStatus(), fileStatus: info.status, numFences: info.numFences, fences: info.fences.map((f) => ({ status: f.status, objName: f.objName, driverName: f.driverName })) };
        const signalled = info.fences.filter((f) => f.status !== 0).length;
        if (signalled >= want) return { ok: true, state };
        return { ok: false, state, next: anySignal([...unwrapFences(fence)].filter((f) => !f.isSignaled())) };
      });
    },

    'wait.resv.busy': (ctx, args) => {
      const resv = fenceState(ctx).resvs.get(args.resv);
      const want = argWant(args);
      return untilState(`reservation object ${String(args.resv)} busy as ${JSON.stringify(want)}`, timeoutOf(args), () => {
        const state = resvBusy(resv);
        if (matches(state, want)) return { ok: true, state };
        return { ok: false, state, next: anySignal(resv.getFences(DmaResvUsage.BOOKKEEP)) };
      });
    },

    'wait.dmabuf.busy': (ctx, args) => untilBufBusy(syncOf(ctx), target(ctx, args), argWant(args), timeoutOf(args)),
  },
};
