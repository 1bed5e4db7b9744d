/**
 * The importer half of the driver: EXPORT and NOTIFY_UNEXPORT handling, the
 * NEW_IMPORT events, exportFd (the original's EXPORT_FD ioctl) with lazy
 * mapping, and release. State machine: import-entry.ts and SPEC.md 11.2.
 *
 * Differences from the original that this file is responsible for:
 * - an EXPORT whose id names another domain than its sender is refused;
 * - EXPORT is answered only after the import is registered;
 * - every field is bounded (private data, page count, geometry, format);
 * - the exporter's refusal of EXPORT_FD is honoured, and only an fd the
 *   exporter counted is undone (EXPORT_FD_FAILED names it); a version-2
 *   first fd, returned before the answer, is revoked and unmapped if refused;
 * - user code gets the mapped pages as one contiguous view (read-write
 *   when the export is), not NULL;
 * - the pages are unmapped before the exporter is told of the last release,
 *   so it never finds them mapped when it ends its grants;
 * - the exporter's death invalidates its imports; open fds stay readable;
 * - a move (DMABUF_MOVE_NOTIFY, import-move.ts) detaches every view of the
 *   old pages and unmaps them before it is answered; the new pages are
 *   mapped before answering or at the next access (SPEC.md 11.8).
 */
import { ProtocolError } from '../../protocol/errors.ts';
import type { RequestOf } from '../../protocol/message.ts';
import {
  DMABUF_EXPORT, DMABUF_EXPORT_FD, DMABUF_EXPORT_FD_FAILED, DMABUF_MOVE_NOTIFY, DMABUF_NOTIFY_UNEXPORT, DMABUF_OPS_TO_SOURCE,
  DMABUF_OPS_TO_SOURCE_ASYNC, type DmaDirection, type SyncOp,
} from '../../protocol/messages/dmabuf.ts';
import { DmaBuf, type CpuAccessSync, type DmaBufOps } from '../dmabuf/dma-buf.ts';
import { checkGeometry } from '../dmabuf/geometry.ts';
import type { ForeignMapping } from '../guest/foreign-mapping.ts';
import { RemoteError } from '../transport/rpc-connection.ts';
import { directoryPageCount } from './directory/index.ts';
import { readDirectory } from './directory-reader.ts';
import type { ImportEventQueue } from './event-queue.ts';
import { copyHid, formatHid, hidKey, type Hid } from './hid.ts';
import type { DriverHost } from './host.ts';
import { BufferImportState, ImportMapState } from '../../protocol/machines/import.ts';
import { ImportedBuffer, type InvalidReason, type MapInfo } from './import-entry.ts';
import { ImportMover, type ImportMoveCounters } from './import-move.ts';
import { importedOps, type FdConfirmation, type ImportedFdPriv } from './imported-ops.ts';
import type { ResolvedOptions, SyncMode } from './options.ts';

/** Options of exportFd. */
export interface ExportFdOptions {
  /** How this fd's operations are mirrored to the exporter (default: the driver's syncMode). */
  sync?: SyncMode;
}

/** Importer counters and gauges. */
export interface ImporterStats {
  byState: Record<BufferImportState, number>;
  openFds: number;
  pendingFds: number;
  /** Data pages mapped now. */
  mappedPages: number;
  registered: number;
  privUpdates: number;
  refusedExports: number;
  fdsOpened: number;
  /** First fds returned before the exporter's answer (version 2, SPEC.md 11.2 rule 2). */
  earlyFds: number;
  fdsRefused: number;
  /** Early fds the exporter then refused: revoked. */
  fdsRevoked: number;
  mapFailures: number;
  opsSent: number;
  opsFailed: number;
  /** Unmaps of an import's pages that failed (the pages may stay mapped until the kernel shuts down). */
  unmapFailures: number;
  /** Releases of an fd the exporter could not be told of (also counted in opsFailed; its death releases them). */
  releaseFailures: number;
  forgotten: number;
  /** Imports whose mapping a move invalidated and that are not mapped again yet. */
  invalidated: number;
  /** Move handling counters. */
  move: ImportMoveCounters;
}

/** The importer half of one domain's driver. */
export class Importer {
  private readonly host: DriverHost;
  private readonly options: ResolvedOptions;
  private readonly events: ImportEventQueue;
  private readonly imports = new Map<string, ImportedBuffer>();
  private readonly ops: DmaBufOps;
  private readonly mover: ImportMover;
  /** Implicit sync of CPU access given to every new fd (the cross-VM fence layer sets it; none by default). */
  fdCpuSync: CpuAccessSync | undefined = undefined;
  private readonly counters = {
    registered: 0, privUpdates: 0, refusedExports: 0, fdsOpened: 0, earlyFds: 0, fdsRefused: 0, fdsRevoked: 0, mapFailures: 0, opsSent: 0, opsFailed: 0, unmapFailures: 0, releaseFailures: 0, forgotten: 0,
  };

  constructor(host: DriverHost, options: ResolvedOptions, events: ImportEventQueue) {
    this.host = host;
    this.options = options;
    this.events = events;
    this.ops = importedOps({
      sendOp: (p, op, extra) => this.sendOp(p, op, extra),
      releaseFd: (p) => this.releaseFd(p),
      mapping: (p) => this.mappingForFd(p),
    });
    this.mover = new ImportMover({
      domid: host.domid, remap: options.remapOnMove, find: (hid) => this.find(hid), formats: options.formats,
      ensureMapped: (entry) => this.ensureMapped(entry),
    });
  }

  /** DMABUF_MOVE_NOTIFY: adopt the new location, let go of the old pages, then answer (import-move.ts). */
  handleMoveNotify(body: RequestOf<typeof DMABUF_MOVE_NOTIFY>, src: number): Promise<{ remapped: boolean }> {
    return this.mover.handle(body, src);
  }

  /** The import behind an id (counter and key compared), if any. */
  find(hid: Hid): ImportedBuffer | undefined {
    return this.imports.get(hidKey(hid));
  }

  /** Every import not yet forgotten. */
  entries(): IterableIterator<ImportedBuffer> {
    return this.imports.values();
  }

  /** EXPORT from an exporter: register (or update private data), raise NEW_IMPORT, then answer. */
  handleExport(body: RequestOf<typeof DMABUF_EXPORT>, src: number): Record<string, never> {
    try {
      this.register(body, src);
      return {};
    } catch (e) {
      this.counters.refusedExports++;
      throw e;
    }
  }

  /** NOTIFY_UNEXPORT: no new fds; forget at once if none is open. */
  handleNotifyUnexport(body: RequestOf<typeof DMABUF_NOTIFY_UNEXPORT>, src: number): { openFds: number } {
    if (body.hid.dom !== src) throw new ProtocolError('ERR_ID_DOMAIN_MISMATCH', `NOTIFY_UNEXPORT from dom${src} names a buffer of dom${body.hid.dom}`);
    const entry = this.find(body.hid);
    if (!entry) throw new ProtocolError('ERR_UNKNOWN_BUFFER', `dom${this.host.domid} holds no import ${formatHid(copyHid(body.hid))}`);
    this.invalidate(entry, 'unexported');
    const openFds = entry.fds.size + entry.pendingFds;
    this.forgetIfIdle(entry);
    return { openFds };
  }

  /**
   * Opens an fd on an import: asks the exporter (EXPORT_FD), maps the pages
   * on the first fd, and returns a local dma-buf over them. A refusal is
   * honoured and thrown with the exporter's code; a failure after the
   * exporter counted the fd is undone with EXPORT_FD_FAILED. In version 2
   * the first fd of an unmapped import is returned as soon as the pages are
   * mapped, and the exporter's answer is applied when it comes (SPEC.md
   * 11.2 rule 2): a refusal revokes the fd (see confirmation).
   */
  async exportFd(hid: Hid, opts: ExportFdOptions = {}): Promise<DmaBuf<ImportedFdPriv>> {
    const entry = this.find(hid);
    if (!entry) {
      this.counters.fdsRefused++;
      throw new ProtocolError('ERR_UNKNOWN_BUFFER', `dom${this.host.domid} holds no import ${formatHid(hid)} (unknown counter or wrong key)`);
    }
    if (!entry.valid) {
      this.counters.fdsRefused++;
      throw new ProtocolError('ERR_UNEXPORTED', `${formatHid(hid)} is no longer importable (${entry.invalidReason ?? entry.state})`);
    }
    const fdId = entry.allocFdId();
    // Only the first fd of an import that nothing maps yet is early: a later fd costs no map, and waiting
    // for its answer keeps every refusal of an fd that shares a mapping a plain refusal.
    const early = this.host.hv.version >= 2 && entry.fds.size === 0 && entry.pendingFds === 0;
    entry.pendingFds++;
    let answerPending = false;
    try {
      // Both requests go at once: the map needs nothing from the answer (SPEC 11.2 rules 2, 3). A first fd
      // waits only for its map, so the map goes first and the EXPORT_FD right behind it; any other fd waits
      // for both, and the EXPORT_FD goes first, so that the exporter answers while the backend maps. Either
      // way the EXPORT_FD is sent before the fd exists, so it precedes every operation of the fd.
      let answered: Promise<Refusal | undefined>;
      let mapped: Promise<MapOutcome>;
      if (early) {
        mapped = settled(this.ensureMapped(entry));
        answered = this.askExporter(entry, fdId);
        let answeredYet = false;
        void answered.then(() => { answeredYet = true; });
        const got = await mapped;
        // Mapped before the answer came: the early fd; its answer is applied when it comes (rule 2).
        // Anything else (a failed map, an answer already here, an import unexported meanwhile) is settled
        // below exactly as for any fd.
        if ('m' in got && !answeredYet && entry.valid) {
          const buf = this.createFd(entry, fdId, got.m, opts);
          buf.priv.confirmation = this.confirmEarly(buf.priv, answered);
          this.counters.earlyFds++;
          answerPending = true;
          return buf;
        }
      } else {
        answered = this.askExporter(entry, fdId);
        mapped = settled(this.ensureMapped(entry));
      }
      const refused = await answered;
      if (refused) {
        const e = refused.e;
        this.counters.fdsRefused++;
        const code = (e as ProtocolError).code;
        if (e instanceof RemoteError) {
          // The exporter's answer is final (the original ignored it and created the fd anyway).
          if (code === 'ERR_UNEXPORTED' || code === 'ERR_UNKNOWN_BUFFER') this.invalidate(entry, 'refused');
        } else if (code === 'ERR_TIMEOUT') {
          // No answer: the exporter may still count this fd. Undo exactly it.
          this.sendFdFailed(entry, fdId, 'ERR_TIMEOUT');
        }
        await mapped;
        throw e;
      }
      const got = await mapped;
      if (!('m' in got)) {
        this.counters.mapFailures++;
        const err = mapError(hid, got.e);
        this.sendFdFailed(entry, fdId, err.code);
        throw err;
      }
      return this.createFd(entry, fdId, got.m, opts);
    } finally {
      if (!answerPending) await this.fdSettled(entry);
    }
  }

  /** DMABUF_EXPORT_FD for fdId; resolves with the refusal (err reply or no answer), or undefined when answered ok. */
  private askExporter(entry: ImportedBuffer, fdId: number): Promise<Refusal | undefined> {
    return this.host.hv.peerRequest(DMABUF_EXPORT_FD, entry.exporter, { hid: entry.hid, fdId }).then(() => undefined, (e: unknown) => ({ e }));
  }

  /**
   * Resolves when the exporter's answer to an fd's EXPORT_FD has been
   * applied: 'counted' (answered ok, and every fd but a version-2 early one
   * was only returned after that), 'revoked' (an early fd the exporter
   * refused: it no longer maps anything, each operation but an undo fails
   * with ERR_UNEXPORTED, and its release tells the exporter nothing), or
   * 'unanswered' (no answer in time, or the exporter is gone: the fd stays,
   * its release undoes whatever the exporter counted, and priv.unanswered
   * holds the error).
   */
  confirmation(buf: DmaBuf<ImportedFdPriv>): Promise<FdConfirmation> {
    return buf.priv.confirmation ?? Promise.resolve('counted');
  }

  private createFd(entry: ImportedBuffer, fdId: number, mapping: ForeignMapping, opts: ExportFdOptions): DmaBuf<ImportedFdPriv> {
    const sync = opts.sync ?? this.options.syncMode;
    const buf = new DmaBuf<ImportedFdPriv>({
      ops: this.ops, geometry: entry.geometry, priv: { entry, fdId, sync }, name: `${formatHid(entry.hid)}#fd${fdId}`,
      generation: entry.generation,
    });
    buf.cpuSync = this.fdCpuSync;
    entry.fds.set(fdId, buf);
    if (entry.lifecycle.is(BufferImportState.Registered) && mapping.state === 'mapped') entry.lifecycle.apply('first-fd');
    this.counters.fdsOpened++;
    return buf;
  }

  /** An EXPORT_FD is answered (or failed): unmap and forget the import if nothing uses it any more. */
  private async fdSettled(entry: ImportedBuffer): Promise<void> {
    entry.pendingFds--;
    if (entry.fds.size === 0 && entry.pendingFds === 0) {
      await this.unmapIfIdle(entry);
      this.forgetIfIdle(entry);
    }
  }

  /** Applies the exporter's late answer to an early fd (SPEC.md 11.2 rule 2). */
  private async confirmEarly(p: ImportedFdPriv, answered: Promise<Refusal | undefined>): Promise<FdConfirmation> {
    const refused = await answered;
    const entry = p.entry;
    let outcome: FdConfirmation = 'counted';
    if (refused && refused.e instanceof RemoteError && !EXPORTER_GONE.has(refused.e.code)) {
      const code = refused.e.code;
      this.counters.fdsRefused++;
      this.counters.fdsRevoked++;
      if (code === 'ERR_UNEXPORTED' || code === 'ERR_UNKNOWN_BUFFER') this.invalidate(entry, 'refused');
      // The exporter does not count this fd: it must not keep the pages mapped in its name.
      p.revoked = code;
      entry.fds.delete(p.fdId);
      outcome = 'revoked';
    } else if (refused) {
      // No answer, or the exporter is gone: the fd keeps its pages (an invalid import's fds do, 11.2).
      p.unanswered = refused.e;
      outcome = 'unanswered';
    }
    await this.fdSettled(entry);
    return outcome;
  }

  /** The exporter died: its imports become invalid; open fds stay readable until released. */
  onPeerDied(dom: number): void {
    for (const entry of [...this.imports.values()]) {
      if (entry.exporter !== dom) continue;
      entry.exporterDead = true;
      this.invalidate(entry, 'exporter-died');
      this.forgetIfIdle(entry);
    }
  }

  /** Counters and gauges. */
  stats(): ImporterStats {
    const byState = Object.fromEntries(Object.values(BufferImportState).map((s) => [s, 0])) as Record<BufferImportState, number>;
    let openFds = 0;
    let pendingFds = 0;
    let mappedPages = 0;
    let invalidated = 0;
    for (const e of this.imports.values()) {
      byState[e.state]++;
      openFds += e.fds.size;
      pendingFds += e.pendingFds;
      if (e.mapping?.state === 'mapped') mappedPages += e.mapping.pages;
      if (e.mapState === ImportMapState.Invalidated) invalidated++;
    }
    return { byState, openFds, pendingFds, mappedPages, ...this.counters, invalidated, move: { ...this.mover.counters } };
  }

  private register(body: RequestOf<typeof DMABUF_EXPORT>, src: number): void {
    const hid = copyHid(body.hid);
    if (hid.dom !== src) throw new ProtocolError('ERR_ID_DOMAIN_MISMATCH', `EXPORT from dom${src} carries an id of dom${hid.dom}`);
    if (body.priv.byteLength > this.options.maxPriv) {
      throw new ProtocolError('ERR_PRIV_TOO_LARGE', `${body.priv.byteLength} bytes of private data exceed dom${this.host.domid}'s limit of ${this.options.maxPriv}`);
    }
    if (body.nents > this.options.maxPages) {
      throw new ProtocolError('ERR_BUFFER_TOO_LARGE', `${body.nents} pages exceed dom${this.host.domid}'s limit of ${this.options.maxPages}`);
    }
    const key = hidKey(hid);
    const priv = Uint8Array.from(body.priv);
    if (body.nents === 0) {
      const entry = this.imports.get(key);
      if (!entry) throw new ProtocolError('ERR_UNKNOWN_BUFFER', `private-data update for ${formatHid(hid)}, which dom${this.host.domid} does not hold`);
      if (!entry.valid) throw new ProtocolError('ERR_UNEXPORTED', `private-data update for ${formatHid(hid)}, which is ${entry.state}`);
      if (body.firstOffset !== 0 || body.lastLength !== 0 || body.dirRef !== 0) {
        throw new ProtocolError('ERR_BAD_ARGUMENT', 'a private-data update (nents 0) must have firstOffset, lastLength and dirRef 0');
      }
      entry.priv = priv;
      this.counters.privUpdates++;
      this.raise(entry, true);
      return;
    }
    if (!this.options.formats.includes(body.dirFormat)) {
      throw new ProtocolError('ERR_BAD_DIRECTORY', `dom${this.host.domid} does not read the ${body.dirFormat} directory (it reads ${this.options.formats.join(', ')})`);
    }
    const geometry = { nents: body.nents, firstOffset: body.firstOffset, lastLength: body.lastLength };
    checkGeometry(geometry, `EXPORT of ${formatHid(hid)}`);
    if (body.dirRef === 0) throw new ProtocolError('ERR_BAD_ARGUMENT', 'dirRef 0 is reserved and never a directory page');
    directoryPageCount(body.dirFormat, body.nents);
    if (this.imports.has(key)) throw new ProtocolError('ERR_BAD_ARGUMENT', `${formatHid(hid)} is already registered`);
    if (this.imports.size >= this.options.maxImports) throw new ProtocolError('ERR_LIMIT', `dom${this.host.domid} already holds ${this.imports.size} imports`);
    const entry = new ImportedBuffer({ hid, key, exporter: src, geometry, dirRef: body.dirRef, format: body.dirFormat, access: body.access, priv });
    this.imports.set(key, entry);
    this.counters.registered++;
    this.raise(entry, false);
  }

  private raise(entry: ImportedBuffer, update: boolean): void {
    this.events.push({
      type: 'new_import', hid: copyHid(entry.hid), exporter: entry.exporter, size: entry.size, nents: entry.geometry.nents,
      access: entry.access, update, priv: Uint8Array.from(entry.priv), droppedBefore: 0,
    });
  }

  /**
   * Maps the data pages of the current generation once for all fds:
   * directory walk, then one batched map and one vmap. A move announced
   * while this runs makes the result stale: it is unmapped and the new
   * directory mapped instead, so the caller always gets the current pages.
   */
  private ensureMapped(entry: ImportedBuffer): Promise<ForeignMapping> {
    const m = entry.mapping;
    if (m?.state === 'mapped' && entry.mappedGeneration === entry.generation) return Promise.resolve(m);
    entry.mapping$ ??= this.mapCurrent(entry).finally(() => { entry.mapping$ = undefined; });
    return entry.mapping$;
  }

  private async mapCurrent(entry: ImportedBuffer): Promise<ForeignMapping> {
    const before = entry.mapState;
    for (;;) {
      const generation = entry.generation;
      // Mapping again after a stale result: already in the mapping state.
      if (!entry.map.is(ImportMapState.Mapping)) entry.map.apply('map');
      let mapping: ForeignMapping;
      let info: MapInfo;
      try {
        ({ mapping, info } = await this.mapPages(entry));
      } catch (e) {
        // Moved meanwhile: the old directory may already be gone; the new one is what counts.
        if (generation !== entry.generation) continue;
        if (before !== ImportMapState.Invalidated) entry.map.apply('map-failed');
        else if (entry.map.allows('remap-failed')) entry.map.apply('remap-failed');
        throw e;
      }
      if (generation !== entry.generation) {
        await mapping.unmap().catch(() => { this.counters.unmapFailures++; });
        this.mover.counters.staleMaps++;
        continue;
      }
      const stale = entry.mapping;
      entry.mapping = mapping;
      entry.mappedGeneration = generation;
      entry.map.apply('mapped');
      entry.mapInfo = info;
      if (stale && stale !== mapping) await stale.unmap().catch(() => { this.counters.unmapFailures++; });
      return mapping;
    }
  }

  /**
   * Maps the data pages of the import's current directory. v2: one
   * GNTTAB_MAP_DIRECTORY round trip (the backend reads the directory with
   * every check of a map, SPEC.md 7.7). v1: the importer reads the
   * directory itself (one batched map per level), then maps the data refs.
   */
  private async mapPages(entry: ImportedBuffer): Promise<{ mapping: ForeignMapping; info: MapInfo }> {
    const mapper = this.host.mapper;
    const readonly = entry.access === 'ro';
    if (mapper.speaksV2) {
      const { mapping, dirPages } = await mapper.mapDirectory(entry.exporter, entry.format, entry.dirRef, entry.geometry.nents, { readonly });
      return { mapping, info: { dirPages, dirRounds: 0, dataMapRequests: mapping.mapRequests } };
    }
    const dir = await readDirectory(mapper, entry.exporter, entry.format, entry.dirRef, entry.geometry.nents);
    const mapping = await mapper.mapGrants(entry.exporter, dir.dataRefs, { readonly });
    return { mapping, info: { dirPages: dir.dirPages, dirRounds: dir.rounds, dataMapRequests: mapping.mapRequests } };
  }

  /** The mapping an fd's operation needs, mapped again if a move invalidated it (lazy remap). */
  private async mappingForFd(p: ImportedFdPriv): Promise<ForeignMapping> {
    const entry = p.entry;
    if (p.revoked !== undefined) throw revokedError(p);
    const m = entry.mapping;
    if (m?.state === 'mapped' && entry.mappedGeneration === entry.generation) return m;
    if (entry.exporterDead) {
      throw new ProtocolError('ERR_UNEXPORTED', `${formatHid(entry.hid)}: a move invalidated the mapping and the exporter died before it was mapped again`);
    }
    if (!entry.fds.has(p.fdId)) throw new ProtocolError('ERR_BAD_ARGUMENT', `${formatHid(entry.hid)}: fd ${p.fdId} is released`);
    try {
      const mapping = await this.ensureMapped(entry);
      this.mover.counters.lazyRemaps++;
      return mapping;
    } catch (e) {
      this.counters.mapFailures++;
      throw e instanceof ProtocolError && e.code === 'ERR_BAD_DIRECTORY'
        ? e : new ProtocolError('ERR_MAP_FAILED', `mapping ${formatHid(entry.hid)} again after a move failed: ${(e as Error).message}`);
    }
  }

  /** Unmaps the data pages once no fd is open or pending. */
  private async unmapIfIdle(entry: ImportedBuffer): Promise<void> {
    if (entry.fds.size > 0 || entry.pendingFds > 0) return;
    // A lazy remap still running must not leave its pages behind.
    if (entry.mapping$) await entry.mapping$.catch(() => undefined);
    if (entry.fds.size > 0 || entry.pendingFds > 0) return;
    if (entry.lifecycle.is(BufferImportState.Mapped)) entry.lifecycle.apply('last-fd-released');
    if (entry.map.allows('unmapped')) entry.map.apply('unmapped');
    const mapping = entry.mapping;
    if (!mapping) return;
    entry.mapping = undefined;
    await mapping.unmap().catch(() => { this.counters.unmapFailures++; });
  }

  /** Forgets an invalid import once nothing uses it. */
  private forgetIfIdle(entry: ImportedBuffer): void {
    if (!entry.lifecycle.is(BufferImportState.Invalid) || entry.fds.size > 0 || entry.pendingFds > 0 || entry.mapping || entry.mapping$) return;
    entry.lifecycle.apply('forgotten');
    this.imports.delete(entry.key);
    this.counters.forgotten++;
  }

  private invalidate(entry: ImportedBuffer, reason: InvalidReason): void {
    if (!entry.lifecycle.allows('invalidated')) return;
    entry.lifecycle.apply('invalidated');
    entry.invalidReason = reason;
  }

  private sendFdFailed(entry: ImportedBuffer, fdId: number, reason: string): void {
    if (entry.exporterDead) return;
    try {
      this.host.hv.peerNotify(DMABUF_EXPORT_FD_FAILED, entry.exporter, { hid: entry.hid, fdId, reason });
    } catch {
      // Our connection is gone: the exporter sees us die, which releases every fd.
    }
  }

  private async sendOp(p: ImportedFdPriv, op: SyncOp, extra: { dir?: DmaDirection; page?: number } = {}): Promise<void> {
    const entry = p.entry;
    if (p.revoked !== undefined) {
      // Never counted by the exporter: an undo has nothing to undo there, anything else is refused.
      if (UNDO_OPS.has(op)) return;
      throw revokedError(p);
    }
    if (entry.exporterDead) return;
    const body = { hid: entry.hid, fdId: p.fdId, op, ...extra };
    this.counters.opsSent++;
    try {
      // A pin is always acknowledged: the importer may rely on it only once the exporter holds it.
      if (p.sync === 'ack' || op === 'pin' || op === 'unpin') await this.host.hv.peerRequest(DMABUF_OPS_TO_SOURCE, entry.exporter, body);
      else this.host.hv.peerNotify(DMABUF_OPS_TO_SOURCE_ASYNC, entry.exporter, body);
    } catch (e) {
      this.counters.opsFailed++;
      throw e;
    }
  }

  /** Last reference of an fd: unmap if it was the last fd, tell the exporter, forget if invalid. */
  private async releaseFd(p: ImportedFdPriv): Promise<void> {
    // An early fd: its answer first, so that the pages are unmapped before the release is sent (rule 5).
    if (p.confirmation && (await p.confirmation) === 'revoked') return;
    const entry = p.entry;
    entry.fds.delete(p.fdId);
    // Unmap before telling the exporter, so its end of access finds no page mapped.
    await this.unmapIfIdle(entry);
    await this.sendOp(p, 'release').catch(() => { this.counters.releaseFailures++; });
    this.forgetIfIdle(entry);
  }
}

/** An EXPORT_FD that was not answered ok: the exporter's err reply (RemoteError), or no answer. */
interface Refusal {
  e: unknown;
}

/** A map's outcome, as a value: the mapping, or what it failed with. */
type MapOutcome = { m: ForeignMapping } | { e: unknown };

function settled(mapping: Promise<ForeignMapping>): Promise<MapOutcome> {
  return mapping.then((m) => ({ m }), (e: unknown) => ({ e }));
}

/** Codes of a routed request's answer that come from the backend, not the exporter: it is gone (SPEC 6). */
const EXPORTER_GONE: ReadonlySet<string> = new Set(['ERR_PEER_GONE', 'ERR_NO_SUCH_DOMAIN']);

/** Operations that only undo: on a revoked fd they have nothing to undo. */
const UNDO_OPS: ReadonlySet<SyncOp> = new Set<SyncOp>(['detach', 'unmap', 'end_cpu_access', 'vunmap', 'kunmap', 'unpin', 'release']);

/** The error of every operation on a revoked fd. */
export function revokedError(p: ImportedFdPriv): ProtocolError {
  return new ProtocolError('ERR_UNEXPORTED', `${formatHid(p.entry.hid)}#fd${p.fdId} was revoked: the exporter refused it with ${p.revoked} (SPEC.md 11.2 rule 2)`);
}

/** What a failed map of an import is thrown as: a bad directory as it is, anything else as ERR_MAP_FAILED. */
function mapError(hid: Hid, e: unknown): ProtocolError {
  return e instanceof ProtocolError && e.code === 'ERR_BAD_DIRECTORY'
    ? e : new ProtocolError('ERR_MAP_FAILED', `mapping ${formatHid(hid)} failed: ${(e as Error).message}`);
}
