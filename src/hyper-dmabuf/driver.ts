/**
 * The hyper_dmabuf driver of one domain: exporter and importer in one
 * module, as in the original. It registers the dmabuf message handlers on
 * the domain's backend connection, follows DOMAIN_DIED for peer-death
 * recovery, and offers a user API shaped like the original ioctls:
 *
 * | original ioctl / feature   | here                                   |
 * |----------------------------|----------------------------------------|
 * | EXPORT_REMOTE              | exportRemote(buf, domid, {priv, access}) |
 * | EXPORT_FD                  | exportFd(hid) -> local DmaBuf           |
 * | UNEXPORT                   | unexport(hid, {delayMs})                |
 * | QUERY                      | query(hid) / queryItem(hid, item)       |
 * | read() of NEW_IMPORT       | readEvent() / tryReadEvent()            |
 * | (gntdev EXP_WAIT_RELEASED) | waitReleased(hid, timeoutMs)            |
 * | device close (force_free)  | releaseOwner(owner)                     |
 * | (dynamic sharing, new)     | move(hid or buffer, {wait, timeoutMs}); an importer's fd.pin()/unpin() |
 * | TX/RX_CH_SETUP             | not needed: the backend routes; DMABUF_PEER_HELLO negotiates per peer |
 */
import { ProtocolError } from '../../protocol/errors.ts';
import {
  DMABUF_EXPORT, DMABUF_EXPORT_FD, DMABUF_EXPORT_FD_FAILED, DMABUF_MOVE_NOTIFY, DMABUF_NOTIFY_UNEXPORT, DMABUF_OPS_TO_SOURCE,
  DMABUF_OPS_TO_SOURCE_ASYNC, DMABUF_PEER_HELLO,
} from '../../protocol/messages/dmabuf.ts';
import { DOMAIN_DIED } from '../../protocol/messages/session.ts';
import { DmaBuf } from '../dmabuf/dma-buf.ts';
import type { MoveOptions, MoveResult } from '../dmabuf/move.ts';
import { SystemHeap } from '../dmabuf/system-heap.ts';
import { ImportEventQueue, type NewImportEvent, type ReadEventOptions } from './event-queue.ts';
import type { UnexportOutcome } from './export-entry.ts';
import { Exporter, type ExporterStats, type ExportOptions, type UnexportOptions } from './exporter.ts';
import { formatHid, type Hid } from './hid.ts';
import type { DriverHost } from './host.ts';
import type { ImportedFdPriv } from './imported-ops.ts';
import { Importer, revokedError, type ExportFdOptions, type ImporterStats } from './importer.ts';
import { resolveOptions, type HyperDmabufOptions, type ResolvedOptions } from './options.ts';
import { PeerNegotiation } from './peers.ts';
import { queryExport, queryImport, unknownForQuery, type QueryItem, type QueryResult } from './query.ts';
import type { ValueOf } from '../../protocol/state-machine.ts';

/** Driver lifecycle. */
export const DriverState = {
  Running: 'running',
  Closed: 'closed',
} as const;
/** One of the DriverState states. */
export type DriverState = ValueOf<typeof DriverState>;

/** Driver statistics, for leak checks and the CLI. */
export interface HyperDmabufStats {
  domid: number;
  state: DriverState;
  exporter: ExporterStats;
  importer: ImporterStats;
  events: { queued: number; dropped: number; depth: number };
  /** Peers this domain has negotiated with as exporter. */
  peers: number[];
}

/** One domain's hyper_dmabuf driver. */
export class HyperDmabuf {
  readonly host: DriverHost;
  readonly options: ResolvedOptions;
  /** Allocates buffers of this domain's RAM that can be exported. */
  readonly heap: SystemHeap;
  readonly exporter: Exporter;
  readonly importer: Importer;
  private readonly events: ImportEventQueue;
  private readonly peers: PeerNegotiation;
  private readonly removeListeners: Array<() => void> = [];
  private stateValue: DriverState = DriverState.Running;

  private constructor(host: DriverHost, options: HyperDmabufOptions) {
    this.host = host;
    this.options = resolveOptions(options);
    this.heap = new SystemHeap(host);
    this.events = new ImportEventQueue(this.options.eventQueueDepth);
    this.peers = new PeerNegotiation(host.hv, this.options);
    this.exporter = new Exporter(host, this.options, this.peers);
    this.importer = new Importer(host, this.options, this.events);
  }

  /** Loads the driver on a booted guest kernel: registers its message handlers. */
  static load(host: DriverHost, options: HyperDmabufOptions = {}): HyperDmabuf {
    const d = new HyperDmabuf(host, options);
    const hv = host.hv;
    d.removeListeners.push(
      hv.handlePeerRequest(DMABUF_PEER_HELLO, (body) => d.peers.answer(body)),
      hv.handlePeerRequest(DMABUF_EXPORT, (body, src) => d.importer.handleExport(body, src)),
      hv.handlePeerRequest(DMABUF_NOTIFY_UNEXPORT, (body, src) => d.importer.handleNotifyUnexport(body, src)),
      hv.handlePeerRequest(DMABUF_EXPORT_FD, (body, src) => d.exporter.handleExportFd(body, src)),
      hv.handlePeerRequest(DMABUF_OPS_TO_SOURCE, (body, src) => d.exporter.handleOps(body, src)),
      hv.handlePeerRequest(DMABUF_MOVE_NOTIFY, (body, src) => d.importer.handleMoveNotify(body, src)),
      hv.onEventOf(DMABUF_EXPORT_FD_FAILED, (body, src) => { if (src !== undefined) d.exporter.handleExportFdFailed(body, src); }),
      hv.onEventOf(DMABUF_OPS_TO_SOURCE_ASYNC, (body, src) => { if (src !== undefined) d.exporter.handleOpsAsync(body, src); }),
      hv.onEventOf(DOMAIN_DIED, (body) => d.onPeerDied(body.domid)),
    );
    return d;
  }

  get domid(): number {
    return this.host.domid;
  }

  get state(): DriverState {
    return this.stateValue;
  }

  /** Exports a buffer of this domain to `target`; resolves with its id once the importer registered it. */
  exportRemote(buf: DmaBuf, target: number, opts?: ExportOptions): Promise<Hid> {
    return this.exporter.exportRemote(buf, target, opts);
  }

  /** Unexports after a delay (exporting domain and owner only). */
  unexport(hid: Hid, opts?: UnexportOptions): Promise<UnexportOutcome> {
    return this.exporter.unexport(hid, opts);
  }

  /** Resolves when an export is completely released and freed (gntdev's EXP_WAIT_RELEASED). */
  waitReleased(hid: Hid, timeoutMs?: number): Promise<void> {
    return this.exporter.waitReleased(hid, timeoutMs);
  }

  /** Unexports every export of an owner at once (closing the device). */
  releaseOwner(owner: string): number {
    return this.exporter.releaseOwner(owner);
  }

  /**
   * Moves a buffer of this domain to new pages (dynamic sharing, SPEC.md
   * 11.8), named by one of its export ids or given itself (it must have been
   * allocated movable). Waits while it is pinned or under CPU access; with
   * `wait: false` fails at once instead (ERR_PINNED, ERR_BUSY). Every
   * importer of every export of the buffer is told and acknowledges before
   * the old pages are scrubbed and freed; resolves after that.
   */
  move(target: Hid | DmaBuf, opts?: MoveOptions): Promise<MoveResult> {
    if (target instanceof DmaBuf) return this.exporter.move(target, opts);
    if (target.dom !== this.domid) return Promise.reject(new ProtocolError('ERR_NOT_EXPORTER', `${formatHid(target)} was exported by dom${target.dom}; only it may move it`));
    const e = this.exporter.find(target);
    if (!e) return Promise.reject(new ProtocolError('ERR_UNKNOWN_BUFFER', `no export ${formatHid(target)} (unknown counter or wrong key)`));
    return this.exporter.move(e.buf, opts);
  }

  /** Opens a local dma-buf on an import (the original's EXPORT_FD). */
  exportFd(hid: Hid, opts?: ExportFdOptions): Promise<DmaBuf<ImportedFdPriv>> {
    return this.importer.exportFd(hid, opts);
  }

  /**
   * exportFd, resolved only once the exporter counted the fd: a version-2
   * early fd it refused, or that it never answered (SPEC.md 11.2 rule 2),
   * is released and the refusal or the missing answer thrown, as version 1
   * does. For callers whose next step assumes the exporter's count, e.g. an
   * unexport that must wait for this fd.
   */
  async exportFdCounted(hid: Hid, opts?: ExportFdOptions): Promise<DmaBuf<ImportedFdPriv>> {
    const buf = await this.importer.exportFd(hid, opts);
    const outcome = await this.importer.confirmation(buf);
    if (outcome === 'counted') return buf;
    await buf.put();
    throw outcome === 'revoked' ? revokedError(buf.priv) : buf.priv.unanswered;
  }

  /** Blocking read of the next NEW_IMPORT event. */
  readEvent(opts?: ReadEventOptions): Promise<NewImportEvent> {
    return this.events.read(opts);
  }

  /** Non-blocking read: the next NEW_IMPORT event, or undefined. */
  tryReadEvent(): NewImportEvent | undefined {
    return this.events.tryRead();
  }

  /** Every query item of a buffer this domain exported or imported; ERR_UNKNOWN_BUFFER otherwise. */
  query(hid: Hid): QueryResult {
    if (hid.dom === this.domid) {
      const e = this.exporter.find(hid);
      if (e) return queryExport(e, this.domid);
    } else {
      const i = this.importer.find(hid);
      if (i) return queryImport(i, this.domid);
    }
    throw unknownForQuery(hid, this.domid);
  }

  /** One query item. */
  queryItem<K extends QueryItem>(hid: Hid, item: K): QueryResult[K] {
    return this.query(hid)[item];
  }

  /** Statistics. */
  stats(): HyperDmabufStats {
    return {
      domid: this.domid, state: this.stateValue,
      exporter: this.exporter.stats(), importer: this.importer.stats(),
      events: { queued: this.events.length, dropped: this.events.dropped, depth: this.events.depth },
      peers: this.peers.peers,
    };
  }

  /** Stops timers, closes the event queue and stops listening to events. Idempotent. */
  close(): void {
    if (this.stateValue === DriverState.Closed) return;
    this.stateValue = DriverState.Closed;
    this.exporter.close();
    this.events.close();
    for (const remove of this.removeListeners.splice(0)) remove();
  }

  private onPeerDied(dom: number): void {
    this.peers.forget(dom);
    this.exporter.onPeerDied(dom);
    this.importer.onPeerDied(dom);
  }
}
