/**
 * The exporter half of the driver: exportRemote, unexport, waitReleased,
 * and the handlers of what importers send (EXPORT_FD, EXPORT_FD_FAILED,
 * OPS_TO_SOURCE). State machine: export-entry.ts and SPEC.md 11.1.
 *
 * Differences from the original that this file is responsible for:
 * - an fd is counted per (importer, fdId), so refusals, failures and
 *   releases undo exactly what they name, never a bare counter;
 * - only the domain the buffer was exported to may open fds on it;
 * - private data over the limit is refused, never truncated;
 * - unexport is for the exporting domain and the owner that exported it;
 * - grants are ended with the checked end-access, deferred while a page is
 *   still mapped, and the directory and data pages are freed only after
 *   every grant really ended;
 * - an importer's death counts as the release of all its fds;
 * - a movable buffer can move while exported: the driver's attachment is
 *   dynamic, and each export re-grants and tells its importer
 *   (export-move.ts, SPEC.md 11.8).
 */
import { ProtocolError } from '../../protocol/errors.ts';
import { MAX_DOMID } from '../../protocol/limits.ts';
import type { RequestOf } from '../../protocol/message.ts';
import {
  DMABUF_EXPORT, DMABUF_EXPORT_FD, DMABUF_EXPORT_FD_FAILED, DMABUF_MAX_FDS_PER_BUFFER, DMABUF_NOTIFY_UNEXPORT,
  DMABUF_OPS_TO_SOURCE, type AccessMode, type DirFormat,
} from '../../protocol/messages/dmabuf.ts';
import type { EventOf } from '../../protocol/message.ts';
import { DmaBufState, type Attachment, type DmaBuf, type DynamicImporterOps } from '../dmabuf/dma-buf.ts';
import type { MoveOptions, MoveResult } from '../dmabuf/move.ts';
import type { SgTable } from '../dmabuf/sg-table.ts';
import { revokeAndFree } from '../guest/grant-release.ts';
import { RemoteError } from '../transport/rpc-connection.ts';
import { directoryPageCount } from './directory/index.ts';
import { writeDirectory, type GrantedDirectory } from './directory-writer.ts';
import { ExportMoveState, ExportState } from '../../protocol/machines/export.ts';
import { ExportedBuffer, type UnexportOutcome } from './export-entry.ts';
import { ExportMover, type ExportMoveCounters } from './export-move.ts';
import { copyHid, formatHid, HidAllocator, hidKey, type Hid } from './hid.ts';
import type { DriverHost } from './host.ts';
import type { ResolvedOptions } from './options.ts';
import type { PeerNegotiation } from './peers.ts';
import { ShadowFd } from './shadow.ts';

/** Owner used when a caller names none. */
export const DEFAULT_OWNER = 'default';

/** How many freed exports waitReleased remembers. */
const RECENTLY_FREED = 65_536;

/** Options of exportRemote. */
export interface ExportOptions {
  /** Private data (default empty); over the limit: ERR_PRIV_TOO_LARGE. */
  priv?: Uint8Array;
  /** 'ro' (default): the importer can only read; 'rw': it may write. */
  access?: AccessMode;
  /** Who may unexport it (default 'default'). */
  owner?: string;
  /** A directory format the importer reads, instead of the negotiated default. */
  dirFormat?: DirFormat;
}

/** Options of unexport. */
export interface UnexportOptions {
  /** Delay before the unexport takes effect (default 0: at once). */
  delayMs?: number;
  /** Must be the exporting owner. */
  owner?: string;
}

/** Exporter counters and gauges. */
export interface ExporterStats {
  /** Exports not yet freed, by state. */
  byState: Record<ExportState, number>;
  /** Importer fds open on our exports. */
  openFds: number;
  /** Shadow operations outstanding. */
  shadowOutstanding: number;
  exported: number;
  reexported: number;
  cancelledUnexports: number;
  freed: number;
  fdsAccepted: number;
  fdsRefused: number;
  fdsUndone: number;
  opsApplied: number;
  opsRefused: number;
  asyncOpsDropped: number;
  /** DMABUF_NOTIFY_UNEXPORT requests the importer did not answer with success (it died, or refused). */
  notifyUnexportFailures: number;
  ignoredEvents: number;
  /** Failures while freeing (should stay 0). */
  freeErrors: number;
  /** Buffers moved by move() (each move counts once, whatever the number of its exports). */
  bufferMoves: number;
  /** Exports in the moving state now. */
  moving: number;
  /** Per-export move counters. */
  move: ExportMoveCounters;
}

/** Resources a full export holds, released in reverse order. */
interface Held {
  buf: DmaBuf;
  attachment?: Attachment;
  sgt?: SgTable;
  hid?: Hid;
  dataRefs?: Uint32Array;
  directory?: GrantedDirectory;
  /** The export's setup still holds its pin on the buffer (dropped before the last put). */
  pinned?: boolean;
}

/** The exporter half of one domain's driver. */
export class Exporter {
  private readonly host: DriverHost;
  private readonly options: ResolvedOptions;
  private readonly peers: PeerNegotiation;
  private readonly ids: HidAllocator;
  /** Every export not yet freed, by hidKey. */
  private readonly exports = new Map<string, ExportedBuffer>();
  /** Importable (or unexport-scheduled) exports by buffer and importer: the re-export fast path. */
  private readonly live = new Map<DmaBuf, Map<number, ExportedBuffer>>();
  /** Keys of recently freed exports (oldest first), so a late waitReleased still learns they are released. */
  private readonly recentlyFreed = new Set<string>();
  /** exportRemote calls in flight per (buffer, importer), so that concurrent calls share one id. */
  private readonly inflight = new Map<string, Promise<Hid>>();
  private readonly counters = {
    exported: 0, reexported: 0, cancelledUnexports: 0, freed: 0, fdsAccepted: 0, fdsRefused: 0, fdsUndone: 0,
    opsApplied: 0, opsRefused: 0, asyncOpsDropped: 0, notifyUnexportFailures: 0, ignoredEvents: 0, freeErrors: 0, bufferMoves: 0,
  };
  /** Per-export halves of moves. */
  private readonly mover: ExportMover;
  /** The export behind each of the driver's attachments. */
  private readonly byAttachment = new WeakMap<Attachment, ExportedBuffer>();
  /**
   * The importer ops of the driver's (dynamic) attachments. An attachment
   * with no export yet belongs to an export being set up, which pins the
   * buffer until its export is registered or undone: no move reaches it.
   */
  private readonly importerOps: DynamicImporterOps = {
    prepareMove: (att, to) => {
      const e = this.byAttachment.get(att);
      return e ? this.mover.prepare(e, to) : undefined;
    },
    abortMove: (att) => {
      const e = this.byAttachment.get(att);
      return e ? this.mover.abort(e) : undefined;
    },
    moveNotify: (att) => {
      const e = this.byAttachment.get(att);
      return e ? this.mover.notify(e) : undefined;
    },
  };
  /** The last error met while freeing, for diagnostics. */
  lastFreeError: unknown;

  constructor(host: DriverHost, options: ResolvedOptions, peers: PeerNegotiation) {
    this.host = host;
    this.options = options;
    this.peers = peers;
    this.ids = new HidAllocator(host.domid, options.maxExports);
    this.mover = new ExportMover(host);
  }

  /** The export behind an id, if it is ours and not freed. */
  find(hid: Hid): ExportedBuffer | undefined {
    return hid.dom === this.host.domid ? this.exports.get(hidKey(hid)) : undefined;
  }

  /** Every export not yet freed. */
  entries(): IterableIterator<ExportedBuffer> {
    return this.exports.values();
  }

  /**
   * Exports `buf` to domain `target` and resolves with its id once the
   * importer has registered it. The same buffer to the same domain again
   * returns the same id, sends the new private data, and cancels a pending
   * unexport. A buffer may be exported to several domains (one id each).
   */
  exportRemote(buf: DmaBuf, target: number, opts: ExportOptions = {}): Promise<Hid> {
    const k = `${buf.id}:${target}`;
    const prev = this.inflight.get(k);
    const run = (prev ? prev.catch(() => undefined) : Promise.resolve()).then(() => this.exportOnce(buf, target, opts));
    this.inflight.set(k, run);
    const clear = (): void => { if (this.inflight.get(k) === run) this.inflight.delete(k); };
    run.then(clear, clear);
    return run;
  }

  /**
   * Unexports: after `delayMs` the importer is told (NOTIFY_UNEXPORT) and new
   * fds are refused; the buffer is freed once the importer released every fd.
   * Resolves 'unexported' when that notice has been sent, or 'cancelled' if a
   * re-export cancelled it first. Only the exporting domain, and the owner
   * that exported the buffer, may unexport it.
   */
  unexport(hid: Hid, opts: UnexportOptions = {}): Promise<UnexportOutcome> {
    if (hid.dom !== this.host.domid) {
      return Promise.reject(new ProtocolError('ERR_NOT_EXPORTER', `${formatHid(hid)} was exported by dom${hid.dom}; only it may unexport`));
    }
    const entry = this.exports.get(hidKey(hid));
    if (!entry) return Promise.reject(new ProtocolError('ERR_UNKNOWN_BUFFER', `no export ${formatHid(hid)} (unknown counter or wrong key)`));
    const owner = opts.owner ?? DEFAULT_OWNER;
    if (owner !== entry.owner) return Promise.reject(new ProtocolError('ERR_NOT_PERMITTED', `${formatHid(hid)} belongs to owner '${entry.owner}', not '${owner}'`));
    const delayMs = opts.delayMs ?? 0;
    if (!Number.isInteger(delayMs) || delayMs < 0 || delayMs > 0x7fffffff) {
      return Promise.reject(new ProtocolError('ERR_BAD_ARGUMENT', `unexport delay ${delayMs} ms out of range`));
    }
    if (!entry.importable) return Promise.resolve('unexported');
    const outcome = new Promise<UnexportOutcome>((resolve) => entry.unexportWaiters.push(resolve));
    // Already scheduled: the first delay stands (as the original).
    if (entry.lifecycle.allows('unexport')) {
      entry.lifecycle.apply('unexport');
      if (delayMs === 0) this.takeEffect(entry);
      else entry.unexportTimer = setTimeout(() => this.takeEffect(entry), delayMs);
    }
    return outcome;
  }

  /**
   * Resolves when the export is freed (every fd released, every grant
   * ended, pages freed), like gntdev's EXP_WAIT_RELEASED; ERR_TIMEOUT after
   * timeoutMs. An export freed recently (the last 65,536) resolves at once;
   * an id never exported, or freed long ago, gives ERR_UNKNOWN_BUFFER (as
   * gntdev's -ENOENT, which "for valid file descriptors must not be treated
   * as error").
   */
  async waitReleased(hid: Hid, timeoutMs?: number): Promise<void> {
    if (hid.dom !== this.host.domid) throw new ProtocolError('ERR_NOT_EXPORTER', `${formatHid(hid)} was exported by dom${hid.dom}`);
    const key = hidKey(hid);
    const entry = this.exports.get(key);
    if (!entry && this.recentlyFreed.has(key)) return;
    if (!entry) throw new ProtocolError('ERR_UNKNOWN_BUFFER', `no export ${formatHid(hid)} (already released, or never existed)`);
    if (timeoutMs === undefined) return entry.freed;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ProtocolError('ERR_TIMEOUT', `${formatHid(hid)} not released within ${timeoutMs} ms (state ${entry.state}, ${entry.fds.size} fd(s) open)`)), timeoutMs);
    });
    try {
      await Promise.race([entry.freed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Unexports (delay 0) every importable export of `owner`: what closing the device does. Returns how many. */
  releaseOwner(owner: string): number {
    let n = 0;
    for (const e of [...this.exports.values()]) {
      if (e.owner === owner && e.importable) {
        n++;
        void this.unexport(e.hid, { owner }).catch(() => undefined);
      }
    }
    return n;
  }

  /**
   * Moves an exported (or any movable) buffer of this domain to new pages
   * (SPEC.md 11.8): waits while it is pinned or under CPU access (or fails,
   * ERR_PINNED / ERR_BUSY, with `wait: false`), tells every importer, and
   * resolves once the old pages are freed.
   */
  async move(buf: DmaBuf, opts: MoveOptions = {}): Promise<MoveResult> {
    const result = await buf.move(opts);
    this.counters.bufferMoves++;
    return result;
  }

  /** EXPORT_FD from an importer: count the fd, or refuse. */
  handleExportFd(body: RequestOf<typeof DMABUF_EXPORT_FD>, src: number): Promise<Record<string, never>> {
    let entry: ExportedBuffer;
    try {
      entry = this.lookup(body.hid, src);
    } catch (e) {
      this.counters.fdsRefused++;
      return Promise.reject(e);
    }
    return entry.serial.run(() => {
      try {
        if (!entry.importable) throw new ProtocolError('ERR_UNEXPORTED', `${formatHid(entry.hid)} was unexported (state ${entry.state})`);
        if (entry.fds.has(body.fdId)) throw new ProtocolError('ERR_BAD_ARGUMENT', `fd ${body.fdId} is already open on ${formatHid(entry.hid)}`);
        if (entry.fds.size >= DMABUF_MAX_FDS_PER_BUFFER) throw new ProtocolError('ERR_LIMIT', `${formatHid(entry.hid)} already has ${entry.fds.size} fds open`);
      } catch (e) {
        this.counters.fdsRefused++;
        throw e;
      }
      entry.fds.set(body.fdId, new ShadowFd(`hyper_dmabuf:dom${src}:fd${body.fdId}`));
      this.counters.fdsAccepted++;
      return {};
    });
  }

  /** EXPORT_FD_FAILED: the importer could not use an fd we counted; forget exactly that fd. */
  handleExportFdFailed(body: EventOf<typeof DMABUF_EXPORT_FD_FAILED>, src: number): void {
    let entry: ExportedBuffer;
    try {
      entry = this.lookup(body.hid, src);
    } catch {
      this.counters.ignoredEvents++;
      return;
    }
    void entry.serial.run(async () => {
      const shadow = entry.fds.get(body.fdId);
      if (!shadow) { this.counters.ignoredEvents++; return; }
      entry.fds.delete(body.fdId);
      await shadow.undoAll(entry.buf);
      this.counters.fdsUndone++;
      this.maybeFree(entry);
    });
  }

  /** OPS_TO_SOURCE (acknowledged): mirror the op; resolves with the BUSY answer. */
  handleOps(body: RequestOf<typeof DMABUF_OPS_TO_SOURCE>, src: number): Promise<{ busy: boolean }> {
    let entry: ExportedBuffer;
    try {
      entry = this.lookup(body.hid, src);
    } catch (e) {
      this.counters.opsRefused++;
      return Promise.reject(e);
    }
    return entry.serial.run(async () => {
      try {
        await this.applyOp(entry, body);
      } catch (e) {
        this.counters.opsRefused++;
        throw e;
      }
      this.counters.opsApplied++;
      return { busy: entry.fds.size > 0 };
    });
  }

  /** OPS_TO_SOURCE_ASYNC: the same, with refusals counted and dropped. */
  handleOpsAsync(body: RequestOf<typeof DMABUF_OPS_TO_SOURCE>, src: number): void {
    this.handleOps(body, src).catch(() => { this.counters.asyncOpsDropped++; });
  }

  /** The importer domain died: all its fds count as released; its exports are unexported and freed. */
  onPeerDied(dom: number): void {
    for (const entry of this.exports.values()) {
      if (entry.target !== dom || !entry.lifecycle.allows('importer-died')) continue;
      entry.cancelUnexportDelay();
      entry.lifecycle.apply('importer-died');
      this.removeLive(entry);
      void entry.serial.run(async () => {
        for (const shadow of entry.fds.values()) await shadow.undoAll(entry.buf);
        entry.fds.clear();
        entry.settleUnexport('unexported');
        this.maybeFree(entry);
      });
    }
  }

  /** Stops pending unexport timers (driver shutdown). Exports stay as they are. */
  close(): void {
    for (const e of this.exports.values()) e.cancelUnexportDelay();
  }

  /** Counters and gauges. */
  stats(): ExporterStats {
    const byState = Object.fromEntries(Object.values(ExportState).map((s) => [s, 0])) as Record<ExportState, number>;
    let openFds = 0;
    let shadowOutstanding = 0;
    let moving = 0;
    for (const e of this.exports.values()) {
      byState[e.state]++;
      openFds += e.fds.size;
      if (e.moveState === ExportMoveState.Moving) moving++;
      for (const s of e.fds.values()) shadowOutstanding += s.outstanding;
    }
    return { byState, openFds, shadowOutstanding, ...this.counters, moving, move: { ...this.mover.counters } };
  }

  private async exportOnce(buf: DmaBuf, target: number, opts: ExportOptions): Promise<Hid> {
    const priv = opts.priv ?? new Uint8Array(0);
    const access = opts.access ?? 'ro';
    if (!Number.isInteger(target) || target < 0 || target > MAX_DOMID || target === this.host.domid) {
      throw new ProtocolError('ERR_BAD_ARGUMENT', `cannot export to domain ${target}${target === this.host.domid ? ' (this domain)' : ''}`);
    }
    if (priv.byteLength > this.options.maxPriv) {
      throw new ProtocolError('ERR_PRIV_TOO_LARGE', `${priv.byteLength} bytes of private data exceed this domain's limit of ${this.options.maxPriv}`);
    }
    if (buf.state !== DmaBufState.Live) throw new ProtocolError('ERR_BAD_ARGUMENT', `${buf.name} is ${buf.state}`);
    const existing = this.live.get(buf)?.get(target);
    if (existing) return this.reexport(existing, priv, access);

    const terms = await this.peers.termsFor(target);
    const format = opts.dirFormat ?? terms.format;
    if (!terms.formats.includes(format)) {
      throw new ProtocolError('ERR_NO_COMMON_FORMAT', `dom${target} does not read the ${format} directory (it reads ${terms.formats.join(', ')})`);
    }
    if (priv.byteLength > terms.maxPriv) {
      throw new ProtocolError('ERR_PRIV_TOO_LARGE', `${priv.byteLength} bytes of private data exceed dom${target}'s limit of ${terms.maxPriv}`);
    }
    const nents = buf.geometry.nents;
    if (nents > this.options.maxPages) throw new ProtocolError('ERR_BUFFER_TOO_LARGE', `${nents} pages exceed this domain's limit of ${this.options.maxPages}`);
    if (nents > terms.maxPages) throw new ProtocolError('ERR_BUFFER_TOO_LARGE', `${nents} pages exceed dom${target}'s limit of ${terms.maxPages}`);
    directoryPageCount(format, nents);

    const held: Held = { buf: buf.get() };
    // Pinned until the importer registered the export (or its setup is undone): a move meanwhile would
    // leave grants of old pages that no export knows of, or reach the importer before the EXPORT.
    await buf.pin();
    held.pinned = true;
    let entry: ExportedBuffer;
    try {
      held.attachment = await buf.attach('hyper_dmabuf', this.importerOps);
      held.sgt = await buf.map(held.attachment, 'bidirectional');
      if (held.sgt.dom !== this.host.domid) {
        throw new ProtocolError('ERR_BAD_ARGUMENT', `${buf.name} lives in dom${held.sgt.dom}'s memory; only this domain's own pages can be exported`);
      }
      held.hid = this.ids.allocate();
      held.dataRefs = await this.host.grants.grantAccessMany(target, held.sgt.frames(), access === 'ro');
      held.directory = await writeDirectory(this.host, target, format, held.dataRefs);
      entry = new ExportedBuffer({
        hid: held.hid, key: hidKey(held.hid), target, buf, attachment: held.attachment, sgt: held.sgt, access,
        dataRefs: held.dataRefs, directory: held.directory, owner: opts.owner ?? DEFAULT_OWNER, priv: Uint8Array.from(priv),
      });
    } catch (e) {
      // Freed in the background: a guessed ref could be mapped, and then the pages must wait.
      void this.freeHeld(held);
      throw e;
    }
    this.exports.set(entry.key, entry);
    this.byAttachment.set(entry.attachment, entry);
    this.addLive(entry);
    try {
      await this.host.hv.peerRequest(DMABUF_EXPORT, target, {
        hid: entry.hid, nents, firstOffset: buf.geometry.firstOffset, lastLength: buf.geometry.lastLength,
        dirRef: entry.directory.refs[0]!, dirFormat: format, access, priv,
      });
    } catch (e) {
      // Refused (err reply) or importer gone: it holds nothing. No answer: it may have registered, so tell it.
      this.withdraw(entry, !(e instanceof RemoteError) && (e as ProtocolError).code === 'ERR_TIMEOUT');
      throw e;
    } finally {
      // Known to the mover from here on (a revoking export waits for its old grants to end).
      held.pinned = false;
      await buf.unpin();
    }
    this.counters.exported++;
    return entry.hid;
  }

  /** The fast path: same buffer, same importer. */
  private async reexport(entry: ExportedBuffer, priv: Uint8Array, access: AccessMode): Promise<Hid> {
    if (access !== entry.access) {
      throw new ProtocolError('ERR_BAD_ARGUMENT', `${formatHid(entry.hid)} is exported ${entry.access} to dom${entry.target}; unexport it before exporting it ${access}`);
    }
    const terms = await this.peers.termsFor(entry.target);
    if (priv.byteLength > terms.maxPriv) {
      throw new ProtocolError('ERR_PRIV_TOO_LARGE', `${priv.byteLength} bytes of private data exceed dom${entry.target}'s limit of ${terms.maxPriv}`);
    }
    if (entry.lifecycle.allows('reexport')) {
      // Re-exporting cancels a pending unexport.
      entry.cancelUnexportDelay();
      entry.lifecycle.apply('reexport');
      entry.settleUnexport('cancelled');
      this.counters.cancelledUnexports++;
    }
    await this.host.hv.peerRequest(DMABUF_EXPORT, entry.target, {
      hid: entry.hid, nents: 0, firstOffset: 0, lastLength: 0, dirRef: 0, dirFormat: entry.directory.format, access, priv,
    });
    entry.priv = Uint8Array.from(priv);
    this.counters.reexported++;
    return entry.hid;
  }

  /** An unexport taking effect: notify the importer, refuse new fds, free when no fd is left. */
  private takeEffect(entry: ExportedBuffer): void {
    entry.unexportTimer = undefined;
    if (!entry.lifecycle.allows('unexport-due')) return;
    entry.lifecycle.apply('unexport-due');
    this.removeLive(entry);
    void (async () => {
      try {
        await this.host.hv.peerRequest(DMABUF_NOTIFY_UNEXPORT, entry.target, { hid: entry.hid });
      } catch (e) {
        // ERR_UNKNOWN_BUFFER: it already forgot the buffer. Peer gone: DOMAIN_DIED releases its fds.
        // Either way the exporter's own fd set decides when the buffer is freed.
        void e;
      }
      entry.settleUnexport('unexported');
      this.maybeFree(entry);
    })();
  }

  /** Takes back an export whose EXPORT failed. */
  private withdraw(entry: ExportedBuffer, notify: boolean): void {
    // The importer died meanwhile: its DOMAIN_DIED already took the export back.
    if (!entry.lifecycle.allows('export-failed')) return;
    // An unexport scheduled while the EXPORT was unanswered has nothing left to wait for: the export is gone.
    entry.cancelUnexportDelay();
    entry.lifecycle.apply('export-failed');
    entry.settleUnexport('unexported');
    this.removeLive(entry);
    if (notify) void this.host.hv.peerRequest(DMABUF_NOTIFY_UNEXPORT, entry.target, { hid: entry.hid }).catch(() => { this.counters.notifyUnexportFailures++; });
    this.maybeFree(entry);
  }

  /** Starts freeing when the export is unexported and no fd is open. */
  private maybeFree(entry: ExportedBuffer): void {
    if (!entry.lifecycle.is(ExportState.WaitingRelease) || entry.fds.size > 0) return;
    entry.lifecycle.apply('last-fd-released');
    void this.freeHeld({
      buf: entry.buf, attachment: entry.attachment, sgt: entry.sgt, hid: entry.hid, dataRefs: entry.dataRefs, directory: entry.directory,
    }).then(() => {
      this.exports.delete(entry.key);
      this.recentlyFreed.add(entry.key);
      if (this.recentlyFreed.size > RECENTLY_FREED) this.recentlyFreed.delete(this.recentlyFreed.values().next().value!);
      entry.markFreed();
      this.counters.freed++;
    });
  }

  /**
   * Ends access to every grant (each end checked; a ref still mapped is
   * retried until it ends), then frees the directory pages, drops the
   * driver's attachment and reference (the buffer's pages are scrubbed and
   * freed if that was the last), and returns the id. Never throws.
   */
  private async freeHeld(held: Held): Promise<void> {
    const step = async (fn: () => Promise<void> | void): Promise<void> => {
      try {
        await fn();
      } catch (e) {
        this.counters.freeErrors++;
        this.lastFreeError = e;
      }
    };
    const pending: Promise<void>[] = [];
    await step(() => {
      if (held.dataRefs) pending.push(revokeAndFree(this.host.grants, held.dataRefs).done);
    });
    await step(() => {
      const d = held.directory;
      if (d) pending.push(revokeAndFree(this.host.grants, d.refs, this.host.allocator, d.frames).done);
    });
    await step(async () => { await Promise.all(pending); });
    if (held.sgt && held.attachment) await step(() => held.buf.unmap(held.attachment!, held.sgt!));
    if (held.attachment) await step(() => held.buf.detach(held.attachment!));
    if (held.hid) await step(() => this.ids.release(held.hid!));
    if (held.pinned) {
      held.pinned = false;
      await step(() => held.buf.unpin());
    }
    await step(() => held.buf.put());
  }

  /** The export an importer's message names; ERR_UNKNOWN_BUFFER / ERR_NOT_IMPORTER. */
  private lookup(hid: Hid, src: number): ExportedBuffer {
    const entry = this.find(hid);
    if (!entry) throw new ProtocolError('ERR_UNKNOWN_BUFFER', `dom${this.host.domid} has no export ${formatHid(copyHid(hid))} (unknown counter or wrong key)`);
    if (src !== entry.target) throw new ProtocolError('ERR_NOT_IMPORTER', `${formatHid(entry.hid)} was exported to dom${entry.target}, not dom${src}`);
    return entry;
  }

  private async applyOp(entry: ExportedBuffer, body: RequestOf<typeof DMABUF_OPS_TO_SOURCE>): Promise<void> {
    const shadow = entry.fds.get(body.fdId);
    if (!shadow) throw new ProtocolError('ERR_BAD_ARGUMENT', `fd ${body.fdId} is not open on ${formatHid(entry.hid)}`);
    if (body.op === 'release') {
      entry.fds.delete(body.fdId);
      await shadow.undoAll(entry.buf);
      this.maybeFree(entry);
      return;
    }
    await shadow.apply(entry.buf, body.op, body.dir ?? 'bidirectional', body.page ?? 0);
  }

  private addLive(entry: ExportedBuffer): void {
    let byTarget = this.live.get(entry.buf);
    if (!byTarget) { byTarget = new Map(); this.live.set(entry.buf, byTarget); }
    byTarget.set(entry.target, entry);
  }

  private removeLive(entry: ExportedBuffer): void {
    const byTarget = this.live.get(entry.buf);
    if (byTarget?.get(entry.target) !== entry) return;
    byTarget.delete(entry.target);
    if (byTarget.size === 0) this.live.delete(entry.buf);
  }
}
