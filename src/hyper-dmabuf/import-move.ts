/**
 * The importer's side of a move (DMABUF_MOVE_NOTIFY, SPEC.md 11.8): Linux's
 * move_notify callback, across VMs.
 *
 * In order, for one import:
 *   1. check the message (sender is the exporter, a newer generation, the
 *      same geometry, a format this domain reads) and adopt the new
 *      location at once, synchronously: every mapping started from now on
 *      walks the new directory; every fd's generation grows and its CPU
 *      views become stale;
 *   2. detach and unmap the old mapping (views first, then the handles at
 *      the backend), started in the same step as 1 so that no access ever
 *      finds the old mapping current under the new generation; then wait
 *      for a mapping still being made: one of the old location unmaps
 *      itself and maps the new one instead;
 *   3. eager remap (option remapOnMove 'eager'): map the new pages now, if
 *      any fd is open; lazy (default, as Linux's "re-create as soon as
 *      possible"): the next access that needs the pages maps them;
 *   4. answer. The exporter frees the old pages only after this answer, and
 *      only once their grants really ended.
 *
 * Moves of one import are handled one at a time, in arrival order.
 */
import { ProtocolError } from '../../protocol/errors.ts';
import type { RequestOf } from '../../protocol/message.ts';
import type { DirFormat, DMABUF_MOVE_NOTIFY } from '../../protocol/messages/dmabuf.ts';
import type { ForeignMapping } from '../guest/foreign-mapping.ts';
import { directoryPageCount } from './directory/index.ts';
import { copyHid, formatHid, type Hid } from './hid.ts';
import type { ImportedBuffer } from './import-entry.ts';
import type { RemapMode } from './options.ts';

/** Importer counters about moves. */
export interface ImportMoveCounters {
  /** MOVE_NOTIFY accepted. */
  movesReceived: number;
  /** MOVE_NOTIFY refused (unknown buffer, bad generation or geometry, ...). */
  movesRefused: number;
  /** Old mappings unmapped because of a move. */
  invalidations: number;
  /** New pages mapped before answering (eager). */
  eagerRemaps: number;
  /** Eager remaps that failed (retried lazily). */
  eagerRemapFailures: number;
  /** Accesses that had to map the pages again after a move (lazy). */
  lazyRemaps: number;
  /** Mappings that completed for a location a move had already replaced (unmapped, mapped again). */
  staleMaps: number;
  /** Unmaps of a moved import's old pages that failed. */
  unmapFailures: number;
}

/** What the handler needs of the importer. */
export interface ImportMoveContext {
  readonly domid: number;
  readonly remap: RemapMode;
  readonly formats: readonly DirFormat[];
  find(hid: Hid): ImportedBuffer | undefined;
  ensureMapped(entry: ImportedBuffer): Promise<ForeignMapping>;
}

/** Handles MOVE_NOTIFY for one driver. */
export class ImportMover {
  private readonly ctx: ImportMoveContext;
  readonly counters: ImportMoveCounters = {
    movesReceived: 0, movesRefused: 0, invalidations: 0, eagerRemaps: 0, eagerRemapFailures: 0, lazyRemaps: 0, staleMaps: 0, unmapFailures: 0,
  };

  constructor(ctx: ImportMoveContext) {
    this.ctx = ctx;
  }

  /** Steps 1-4; resolves with the answer. */
  handle(body: RequestOf<typeof DMABUF_MOVE_NOTIFY>, src: number): Promise<{ remapped: boolean }> {
    let entry: ImportedBuffer;
    try {
      entry = this.adopt(body, src);
    } catch (e) {
      this.counters.movesRefused++;
      return Promise.reject(e);
    }
    this.counters.movesReceived++;
    const generation = body.generation;
    // Not behind the moves queued before it: code that runs between this message and its turn (an fd
    // opened in the same event-loop turn) must find no mapping of the old location still current.
    const unmapping = this.dropOldMapping(entry, generation);
    return entry.moves.run(async () => {
      await unmapping;
      // A mapping still being made: waited for, not judged here (its failure is reported to the access that started it).
      if (entry.mapping$) await entry.mapping$.catch(() => undefined);
      return { remapped: await this.remap(entry, generation) };
    });
  }

  /** Step 1. */
  private adopt(body: RequestOf<typeof DMABUF_MOVE_NOTIFY>, src: number): ImportedBuffer {
    if (body.hid.dom !== src) throw new ProtocolError('ERR_ID_DOMAIN_MISMATCH', `MOVE_NOTIFY from dom${src} names a buffer of dom${body.hid.dom}`);
    const entry = this.ctx.find(body.hid);
    if (!entry) throw new ProtocolError('ERR_UNKNOWN_BUFFER', `dom${this.ctx.domid} holds no import ${formatHid(copyHid(body.hid))}`);
    if (body.generation <= entry.generation) {
      throw new ProtocolError('ERR_BAD_ARGUMENT', `MOVE_NOTIFY generation ${body.generation} of ${formatHid(entry.hid)} is not after ${entry.generation}`);
    }
    const g = entry.geometry;
    if (body.nents !== g.nents || body.firstOffset !== g.firstOffset || body.lastLength !== g.lastLength) {
      throw new ProtocolError('ERR_BAD_ARGUMENT',
        `MOVE_NOTIFY of ${formatHid(entry.hid)} changes the geometry (${body.nents}/${body.firstOffset}/${body.lastLength}, exported ${g.nents}/${g.firstOffset}/${g.lastLength})`);
    }
    if (!this.ctx.formats.includes(body.dirFormat)) {
      throw new ProtocolError('ERR_BAD_DIRECTORY', `dom${this.ctx.domid} does not read the ${body.dirFormat} directory`);
    }
    directoryPageCount(body.dirFormat, body.nents);
    entry.generation = body.generation;
    entry.dirRef = body.dirRef;
    entry.format = body.dirFormat;
    for (const fd of entry.fds.values()) fd.invalidateViews(body.generation);
    return entry;
  }

  /** Step 2, synchronously: the old mapping stops being the import's, and its unmap starts; resolves once it is done. */
  private dropOldMapping(entry: ImportedBuffer, generation: number): Promise<void> {
    const old = entry.mapping;
    if (!old || entry.mappedGeneration >= generation) return Promise.resolve();
    entry.mapping = undefined;
    entry.map.apply('moved');
    this.counters.invalidations++;
    // Views are detached first, then the handles released: once this resolves the backend holds no old page for us.
    return old.unmap().catch(() => { this.counters.unmapFailures++; });
  }

  /** Step 3; true if the new pages are mapped now. */
  private async remap(entry: ImportedBuffer, generation: number): Promise<boolean> {
    const current = (): boolean => entry.mapping?.state === 'mapped' && entry.mappedGeneration >= generation;
    if (current()) return true;
    if (this.ctx.remap !== 'eager' || (entry.fds.size === 0 && entry.pendingFds === 0)) return false;
    try {
      await this.ctx.ensureMapped(entry);
      this.counters.eagerRemaps++;
    } catch {
      // The next access tries again (lazily) and reports the error to its caller.
      this.counters.eagerRemapFailures++;
    }
    return current();
  }
}
