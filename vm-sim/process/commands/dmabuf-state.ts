/**
 * State and argument helpers shared by the hyper_dmabuf command files
 * (dmabuf-commands.ts, dmabuf-move-commands.ts). The state's driver, bufs
 * and fds are also what sim-state.ts attaches to.
 */
import type { Attachment, DmaBuf } from '../../../src/dmabuf/dma-buf.ts';
import type { SystemHeapPriv } from '../../../src/dmabuf/system-heap.ts';
import { parseHid, type Hid, type HyperDmabuf } from '../../../src/hyper-dmabuf/index.ts';
import type { ObjectStore, VmContext } from './commands.ts';
import type { ProducerRun } from '../../../workloads/move-stream.ts';

/** A buffer or an fd, with the one vmap the commands keep for it. */
export interface Held<P> {
  buf: DmaBuf<P>;
  view: Uint8Array | undefined;
  /** Generation of `view`: a move makes it stale, and the commands fetch it again. */
  gen?: number;
  /** Attachments made by dmabuf.fdOp, newest last. */
  atts?: Attachment[];
}

/** The module's state under 'dmabuf'. */
export interface DmabufState {
  driver: HyperDmabuf;
  bufs: ObjectStore<Held<SystemHeapPriv>>;
  fds: ObjectStore<Held<unknown>>;
  /** Frame producers running (dmabuf.produce), stopped by dmabuf.produceStop. */
  producers: ObjectStore<ProducerRun>;
}

/** The module's state. */
export function st(ctx: VmContext): DmabufState {
  return ctx.state.get('dmabuf') as DmabufState;
}

/** An ERR_BAD_ARGUMENT error for a command. */
export function badArg(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_BAD_ARGUMENT' });
}

/** A buffer id argument in text form ('dom:cnt:keyhex'). */
export function argHid(args: Record<string, unknown>, name = 'hid'): Hid {
  const v = args[name];
  if (typeof v !== 'string') throw badArg(`argument ${name} must be a buffer id 'dom:cnt:keyhex'`);
  return parseHid(v);
}
