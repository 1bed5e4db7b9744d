/**
 * Moving a buffer's pages (dynamic sharing, SPEC.md 11.8): what a Linux
 * dynamic exporter does when it migrates a buffer and calls
 * dma_buf_move_notify, in this model's steps:
 *
 *   1. wait (MoveGate) until no move runs and no pin or CPU access is held;
 *      the buffer is then `moving`: new pins, CPU accesses, static
 *      mappings, vmaps and kmaps wait until step 5;
 *   2. the exporter allocates the new location (relocate);
 *   3. every dynamic attachment prepares for it (prepareMove: a cross-VM
 *      importer grants the new pages); a failure undoes 2 and 3, and the
 *      buffer stays where it was, untouched;
 *   4. the exporter copies the data and makes the new location the
 *      buffer's (commit: its old CPU views are detached), and the buffer's
 *      generation grows by one;
 *   5. every dynamic attachment is told (moveNotify) and the move waits
 *      until each has moved on; then the buffer stops `moving`;
 *   6. once every attachment released the old location, the exporter
 *      scrubs and frees it (retire). Only then does move() resolve.
 *
 * Splitting 5 and 6 keeps a slow peer that still maps old pages (its
 * grants are ended only when it unmaps) from blocking the buffer's users:
 * the old pages simply stay allocated until it lets go.
 */
import { ProtocolError } from '../../protocol/errors.ts';
import type { MoveBlocker, MoveGate, MoveWaitOptions } from './move-gate.ts';
import type { SgTable } from './sg-table.ts';

/** What a dynamic importer's moveNotify may return. */
export interface MoveNotifyResult {
  /** Resolves when nothing of the importer references the old location any more. */
  readonly released: Promise<void>;
}

/**
 * What a move needs of an attachment (dma-buf.ts's Attachment): its
 * importer's move callbacks. Declared here so that this file does not import
 * dma-buf.ts, which imports it (imports run one way).
 */
export interface MovingAttachment<A> {
  readonly importerOps?: {
    prepareMove?(att: A, to: SgTable): Promise<void> | void;
    abortMove?(att: A): Promise<void> | void;
    moveNotify(att: A): Promise<MoveNotifyResult | void> | MoveNotifyResult | void;
  } | undefined;
}

/** What a move needs of a buffer (dma-buf.ts's DmaBuf). */
export interface MovableBuffer<B, A extends MovingAttachment<A>> {
  readonly name: string;
  readonly generation: number;
  readonly gate: MoveGate;
  readonly ops: { readonly exporter: string; relocate?(buf: B): Promise<Relocation> | Relocation };
  get(): unknown;
  put(): Promise<void>;
  dynamicAttachments(): A[];
  invalidateViews(generation: number): void;
}

/** How an exporter moves one buffer (what its relocate returns). */
export interface Relocation {
  /** The new location: scrubbed pages, not yet holding the data. */
  readonly to: SgTable;
  /** Copies the data to the new location and makes it the buffer's. The old pages stay allocated; the exporter's own CPU views of them are detached. */
  commit(): Promise<void> | void;
  /** Gives the new location back: the move was abandoned before commit. */
  abort(): Promise<void> | void;
  /** Scrubs and frees the old location, once nothing references it. */
  retire(): Promise<void> | void;
}

/** Options of a move. */
export type MoveOptions = MoveWaitOptions;

/** What a move did, with its timings (milliseconds). */
export interface MoveResult {
  /** The buffer's generation after the move. */
  generation: number;
  /** Pages moved. */
  pages: number;
  /** Dynamic attachments told (moveNotify). */
  notified: number;
  /** moveNotify calls that broke their contract and rejected; the old pages are then kept, never freed. */
  notifyErrors: number;
  /** Time waiting to start, and what for. */
  waitedMs: number;
  waitedFor: MoveBlocker[];
  /** Allocating and preparing the new location (steps 2-3). */
  prepareMs: number;
  /** Copying the data (step 4). */
  copyMs: number;
  /** Until every attachment moved on (step 5). */
  notifyMs: number;
  /** Until the old location was freed (step 6). */
  retireMs: number;
  /** From the start of the move (after waiting) to its end. */
  moveMs: number;
}

/** Runs the steps above on `buf`. */
export async function moveBuffer<B extends MovableBuffer<B, A>, A extends MovingAttachment<A>>(buf: B, opts: MoveOptions = {}): Promise<MoveResult> {
  const ops = buf.ops;
  if (!ops.relocate) {
    throw new ProtocolError('ERR_BAD_ARGUMENT', `${buf.name}: its exporter (${ops.exporter}) cannot move it (a system-heap buffer must be allocated movable)`);
  }
  // Our own reference: a last put during the move must not free pages under it.
  buf.get();
  try {
    const start = await buf.gate.beginMove(opts);
    const t0 = performance.now();
    let released: Array<Promise<void>>;
    let result: Omit<MoveResult, 'retireMs' | 'moveMs'>;
    let reloc: Relocation;
    try {
      reloc = await ops.relocate(buf);
      const atts = buf.dynamicAttachments();
      await prepareAll(atts, reloc);
      const t1 = performance.now();
      try {
        await reloc.commit();
      } catch (e) {
        // Nothing was announced yet: undo as for a failed prepare.
        await undoPrepared(atts, reloc);
        throw e;
      }
      buf.invalidateViews(buf.generation + 1);
      const t2 = performance.now();
      const told = await Promise.allSettled(atts.map(async (att) => (await att.importerOps!.moveNotify(att)) ?? undefined));
      released = [];
      let notifyErrors = 0;
      for (const t of told) {
        if (t.status === 'rejected') notifyErrors++;
        else if (t.value) released.push(t.value.released);
      }
      result = {
        generation: buf.generation, pages: reloc.to.nents, notified: atts.length, notifyErrors,
        waitedMs: start.waitedMs, waitedFor: start.waitedFor, prepareMs: t1 - t0, copyMs: t2 - t1, notifyMs: performance.now() - t2,
      };
    } finally {
      buf.gate.endMove();
    }
    const t3 = performance.now();
    await Promise.all(released);
    // An importer that broke its contract may still use the old pages: keep them rather than free them under it.
    if (result.notifyErrors === 0) await reloc.retire();
    return { ...result, retireMs: performance.now() - t3, moveMs: performance.now() - t0 };
  } finally {
    await buf.put();
  }
}

/** Step 3: prepares every attachment, or undoes the ones prepared and the relocation. */
async function prepareAll<A extends MovingAttachment<A>>(atts: A[], reloc: Relocation): Promise<void> {
  const prepared: A[] = [];
  try {
    for (const att of atts) {
      await att.importerOps!.prepareMove?.(att, reloc.to);
      prepared.push(att);
    }
  } catch (e) {
    await undoPrepared(prepared, reloc);
    throw e;
  }
}

/** Aborts the prepared attachments (newest first) and gives the new location back. */
async function undoPrepared<A extends MovingAttachment<A>>(prepared: A[], reloc: Relocation): Promise<void> {
  for (const att of [...prepared].reverse()) {
    try {
      await att.importerOps!.abortMove?.(att);
    } catch {
      // Undo what can be undone; the move's own error is the one to report.
    }
  }
  await reloc.abort();
}
