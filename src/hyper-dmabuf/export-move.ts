/**
 * The exporter's side of a move, per export (SPEC.md 11.8): the dynamic
 * importer ops of the driver's attachment to an exported buffer.
 *
 * prepareMove: grant the new pages to the importer (same access) and write a
 * new directory, read-only, as for an EXPORT. Nothing is announced yet, so a
 * failure (grant table full, no memory) is undone and the move abandoned.
 *
 * moveNotify, once the data is in the new pages:
 *   1. the export switches to the new location (its mapping, refs and
 *      directory) and its generation grows by one;
 *   2. DMABUF_MOVE_NOTIFY goes to the importer and the move waits for its
 *      answer: the importer then maps no old page any more. An error answer
 *      (it no longer holds the buffer), its death, or no answer in time all
 *      end the wait too;
 *   3. every old grant is ended with the checked end-if-not-busy, retried
 *      while busy, so old pages are never freed while a peer maps them, even
 *      a peer that answered without unmapping or did not answer at all; the
 *      old directory pages are scrubbed and freed with them, and the old
 *      data pages (the heap's) only after all of them ended.
 * Step 3 is the `released` promise: the buffer stops moving after step 2.
 */
import { DMABUF_MOVE_NOTIFY } from '../../protocol/messages/dmabuf.ts';
import type { MoveNotifyResult } from '../dmabuf/dma-buf.ts';
import type { SgTable } from '../dmabuf/sg-table.ts';
import { revokeAndFree } from '../guest/grant-release.ts';
import { RemoteError } from '../transport/rpc-connection.ts';
import { writeDirectory, type GrantedDirectory } from './directory-writer.ts';
import { ExportState } from '../../protocol/machines/export.ts';
import type { ExportedBuffer, PreparedLocation } from './export-entry.ts';
import type { DriverHost } from './host.ts';

/** Errors that mean the importer itself never answered (the backend or the connection did). */
const NO_ANSWER = new Set(['ERR_PEER_GONE', 'ERR_NO_SUCH_DOMAIN', 'ERR_BACKPRESSURE', 'ERR_TIMEOUT', 'ERR_CLOSED']);

/** Exporter counters about moves. */
export interface ExportMoveCounters {
  /** Exports moved (one per export per buffer move). */
  exportMoves: number;
  /** MOVE_NOTIFY answered ok. */
  moveAcks: number;
  /** MOVE_NOTIFY answered with an error (the importer no longer held the buffer). */
  moveRefused: number;
  /** MOVE_NOTIFY not answered: importer gone, or timeout (old grants still end only when unmapped). */
  moveUnanswered: number;
  /** Importers that had already mapped the new pages when they answered (eager remap). */
  moveRemapped: number;
  /** Prepared locations undone because the move was abandoned. */
  moveAborts: number;
}

/** Moves the exports of one driver. */
export class ExportMover {
  private readonly host: DriverHost;
  readonly counters: ExportMoveCounters = { exportMoves: 0, moveAcks: 0, moveRefused: 0, moveUnanswered: 0, moveRemapped: 0, moveAborts: 0 };

  constructor(host: DriverHost) {
    this.host = host;
  }

  /** True while the export's importer may hold the import (it must be told of moves). */
  static announced(entry: ExportedBuffer): boolean {
    return entry.lifecycle.is(ExportState.Exported, ExportState.UnexportScheduled, ExportState.WaitingRelease);
  }

  /** Grants the new pages and writes the new directory (all or nothing). */
  async prepare(entry: ExportedBuffer, to: SgTable): Promise<void> {
    // Being revoked: its old grants are ending anyway, and nothing new is announced.
    if (!ExportMover.announced(entry)) return;
    const refs = await this.host.grants.grantAccessMany(entry.target, to.frames(), entry.access === 'ro');
    let directory: GrantedDirectory;
    try {
      directory = await writeDirectory(this.host, entry.target, entry.directory.format, refs);
    } catch (e) {
      // Never announced, so never mapped: they end at once.
      await revokeAndFree(this.host.grants, refs).done;
      throw e;
    }
    entry.prepared = { dataRefs: refs, directory };
    entry.moves.apply('prepared');
  }

  /** Undoes prepare (the move was abandoned before the data moved). */
  async abort(entry: ExportedBuffer): Promise<void> {
    const p = entry.prepared;
    if (!p) return;
    entry.prepared = undefined;
    entry.moves.apply('aborted');
    this.counters.moveAborts++;
    // Never announced, so never mapped: every grant ends at once.
    await this.release(p);
  }

  /** Steps 1-3 above; resolves after step 2 with step 3 as `released`. Never rejects. */
  async notify(entry: ExportedBuffer): Promise<MoveNotifyResult> {
    const next = entry.prepared;
    entry.prepared = undefined;
    if (!next || !ExportMover.announced(entry)) {
      // Revoking (or freed): the grants it ends are the old ones, and the old pages wait for that.
      // A location prepared before it got there was never announced: it ends at once.
      if (next) {
        entry.moves.apply('dropped');
        void this.release(next);
      }
      return { released: entry.freed.then(() => undefined) };
    }
    const old: PreparedLocation = { dataRefs: entry.dataRefs, directory: entry.directory };
    // Step 1, synchronously: a release arriving from now on frees the NEW location and leaves the old one to us.
    entry.dataRefs = next.dataRefs;
    entry.directory = next.directory;
    entry.generation++;
    await this.remapOwnTable(entry);
    await this.tell(entry);
    entry.moves.apply('notified');
    this.counters.exportMoves++;
    return { released: this.release(old) };
  }

  /** Ends access to a location's grants (checked, retried while busy) and frees its directory pages. */
  private release(loc: PreparedLocation): Promise<void> {
    return Promise.all([
      revokeAndFree(this.host.grants, loc.dataRefs).done,
      revokeAndFree(this.host.grants, loc.directory.refs, this.host.allocator, loc.directory.frames).done,
    ]).then(() => undefined);
  }

  /**
   * Replaces the driver's own table of the buffer (a dynamic attachment's
   * mapping goes stale at a move). If the export started being freed
   * meanwhile, freeing unmaps the table it took, and the new one goes now.
   */
  private async remapOwnTable(entry: ExportedBuffer): Promise<void> {
    let fresh: SgTable;
    try {
      fresh = await entry.buf.map(entry.attachment, 'bidirectional');
    } catch {
      // The table is the driver's description only; the importer never sees it.
      return;
    }
    const other = ExportMover.announced(entry) ? entry.sgt : fresh;
    if (other !== fresh) entry.sgt = fresh;
    await entry.buf.unmap(entry.attachment, other).catch(() => undefined);
  }

  /** Step 2: MOVE_NOTIFY, waiting for the answer, if the importer may still hold the import. */
  private async tell(entry: ExportedBuffer): Promise<void> {
    if (!ExportMover.announced(entry)) return;
    const g = entry.buf.geometry;
    try {
      const r = await this.host.hv.peerRequest(DMABUF_MOVE_NOTIFY, entry.target, {
        hid: entry.hid, generation: entry.generation, nents: g.nents, firstOffset: g.firstOffset, lastLength: g.lastLength,
        dirRef: entry.directory.refs[0]!, dirFormat: entry.directory.format,
      });
      this.counters.moveAcks++;
      if (r.remapped) this.counters.moveRemapped++;
    } catch (e) {
      // An error answer (ERR_UNKNOWN_BUFFER: it forgot the buffer) means it maps nothing of it. Peer gone or
      // no answer in time: the checked end of access (step 3) waits for any mapping it may still hold.
      const code = (e as { code?: unknown }).code;
      if (e instanceof RemoteError && !NO_ANSWER.has(String(code))) this.counters.moveRefused++;
      else this.counters.moveUnanswered++;
    }
  }
}
