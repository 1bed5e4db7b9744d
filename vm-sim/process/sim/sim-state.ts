/**
 * What the simulator's programs share in a VM: the hyper_dmabuf driver and
 * the objects of the driver's command module (dmabuf-commands.ts), which
 * the sim commands use by the same numeric ids the launcher got from
 * dmabuf.alloc and dmabuf.exportFd, so that a scenario can export and
 * import with the driver's commands and then draw, check and hand frames
 * off with these.
 */
import { ECHO } from '../../../protocol/messages/session.ts';
import { GNTTAB_COPY } from '../../../protocol/messages/grant.ts';
import type { DmaBuf } from '../../../src/dmabuf/dma-buf.ts';
import { copyHid, HyperDmabuf, parseHid, type Hid, type ImportedFdPriv } from '../../../src/hyper-dmabuf/index.ts';
import { ObjectStore, type VmContext } from '../commands/commands.ts';

/** A buffer or fd of the dmabuf command module, with the one vmap kept for it. */
export interface HeldBuf {
  buf: DmaBuf;
  view: Uint8Array | undefined;
}

/** The dmabuf command module's object stores (its state under 'dmabuf'). */
export interface DmabufStores {
  bufs: ObjectStore<HeldBuf>;
  fds: ObjectStore<HeldBuf>;
}

/** Bytes this VM sent in copies (ECHO, GNTTAB_COPY frames): the "bytes copied" of a run. */
export interface CopyCounters {
  echoFrames: number;
  echoBytes: number;
  grantCopyFrames: number;
  grantCopyBytes: number;
}

/** Counters of the consumer side of handoffs. */
export interface ConsumerCounters {
  handoffs: number;
  checkedOk: number;
  checkedBad: number;
  checkedBytes: number;
}

/** The sim module's state in one VM. */
export interface SimState {
  readonly driver: HyperDmabuf;
  /** True if this module loaded the driver (no dmabuf command module did). */
  readonly ownDriver: boolean;
  /** The dmabuf module's stores, or stores of our own when it is not loaded. */
  readonly stores: DmabufStores;
  /** Imports' fds by hidKey (a cache over stores.fds). */
  readonly fdByHid: Map<string, HeldBuf>;
  /** Buffers and ids of sim.exportMany, unexported together. */
  many: { bufs: DmaBuf[]; hids: Hid[] };
  /** The export bench.shareStart started and bench.shareEnd reports: its ids, or its failure. */
  pendingShare: Promise<{ ok: true; hids: Hid[] } | { ok: false; error: unknown }> | undefined;
  readonly copies: CopyCounters;
  readonly consumer: ConsumerCounters;
}

/** The module's state (made by sim-commands' setup). */
export function simState(ctx: VmContext): SimState {
  const s = ctx.state.get('sim') as SimState | undefined;
  if (!s) throw Object.assign(new Error('the sim module is not set up'), { code: 'ERR_STATE' });
  return s;
}

function isStore(v: unknown): v is ObjectStore<HeldBuf> {
  return v instanceof ObjectStore;
}

/**
 * The driver and the object stores of the dmabuf command module when it is
 * loaded (one driver per domain: the driver registers the dmabuf message
 * handlers on the connection); otherwise a driver and stores of our own.
 */
export function attachToDriver(ctx: VmContext): { driver: HyperDmabuf; own: boolean; stores: DmabufStores } {
  const d = ctx.state.get('dmabuf') as { driver?: unknown; bufs?: unknown; fds?: unknown } | undefined;
  if (d && d.driver instanceof HyperDmabuf && isStore(d.bufs) && isStore(d.fds)) return { driver: d.driver, own: false, stores: { bufs: d.bufs, fds: d.fds } };
  if (d) throw Object.assign(new Error('the dmabuf module\'s state is not {driver, bufs, fds}: vm-sim/process/sim/sim-state.ts must follow dmabuf-commands.ts'), { code: 'ERR_INTERNAL' });
  return { driver: HyperDmabuf.load(ctx.kernel), own: true, stores: { bufs: new ObjectStore('dmabuf buffer'), fds: new ObjectStore('dmabuf fd') } };
}

/** The held fd of an import, by buffer id (cached; a released fd is dropped from the cache). */
export function fdOfHid(s: SimState, key: string): HeldBuf | undefined {
  const cached = s.fdByHid.get(key);
  if (cached && cached.buf.state === 'live') return cached;
  s.fdByHid.delete(key);
  for (const h of s.stores.fds.values()) {
    const p = h.buf.priv as ImportedFdPriv | undefined;
    if (p?.entry?.key === key && h.buf.state === 'live') {
      s.fdByHid.set(key, h);
      return h;
    }
  }
  return undefined;
}

/** The view of a held buffer or fd (one vmap, kept, as the dmabuf module does). */
export async function viewOf(h: HeldBuf): Promise<Uint8Array> {
  h.view ??= await h.buf.vmap();
  return h.view;
}

/** Counts the copies this VM sends (always on, trace or not). */
export function countCopies(ctx: VmContext, counters: CopyCounters): void {
  ctx.kernel.observeWire((direction, type, bytes) => {
    if (direction !== 'out') return;
    if (type === ECHO.type) { counters.echoFrames++; counters.echoBytes += bytes; }
    if (type === GNTTAB_COPY.type) { counters.grantCopyFrames++; counters.grantCopyBytes += bytes; }
  });
}

/** A buffer id argument: text 'dom:cnt:keyhex' (as the dmabuf commands use) or {dom, cnt, key}. */
export function argHid(args: Record<string, unknown>, name = 'hid'): Hid {
  const v = args[name] as unknown;
  if (typeof v === 'string') return parseHid(v);
  const o = v as { dom?: unknown; cnt?: unknown; key?: unknown } | undefined;
  if (o !== null && typeof o === 'object' && typeof o.dom === 'number' && typeof o.cnt === 'number' && o.key instanceof Uint8Array) return copyHid(o as Hid);
  throw Object.assign(new Error(`argument ${name} must be a buffer id ('dom:cnt:keyhex' or {dom, cnt, key})`), { code: 'ERR_BAD_ARGUMENT' });
}
