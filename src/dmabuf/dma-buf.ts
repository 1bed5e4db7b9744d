/**
 * The local dma-buf model: a buffer object shared between drivers of one
 * domain, after Linux's struct dma_buf.
 *
 * The exporter supplies the operations (DmaBufOps, Linux's dma_buf_ops);
 * users attach devices, map attachments to scatter-gather tables, bracket CPU
 * access with begin/end, vmap the buffer into one contiguous view, and drop
 * their reference with put(). The last put runs the exporter's release.
 *
 * Operations may be asynchronous, because an exporter may be remote (the
 * hyper_dmabuf importer forwards them to the real exporter and may wait for
 * its answer). Whatever a user leaves behind at the last put (attachments,
 * mappings, CPU access, vmaps) is undone in reverse order before release, so
 * an exporter's release never sees a half-used buffer, and the count of such
 * leftovers is kept for leak checks.
 *
 * Dynamic sharing (Linux's dynamic attachments, move.ts): an exporter that
 * implements `relocate` can move the buffer's pages while it is not pinned.
 * Attachments made with importer ops (dynamic) are told, and re-map; static
 * attachments pin the buffer while mapped. CPU views (vmap, kmap) do not
 * pin: a move detaches them and bumps `generation`, and their holders fetch
 * a new view with vmap (or kmap) again. The ordering of moves against pins
 * and CPU access is the MoveGate's (move-gate.ts).
 */
import { ProtocolError } from '../../protocol/errors.ts';
import type { DmaDirection } from '../../protocol/messages/dmabuf.ts';
import { bufferSize, type Geometry } from './geometry.ts';
import { MoveGate } from './move-gate.ts';
import { moveBuffer, type MoveNotifyResult, type MoveOptions, type MoveResult, type Relocation } from './move.ts';
import type { SgTable } from './sg-table.ts';
import type { ValueOf } from '../../protocol/state-machine.ts';

/** What an exporter implements. Methods may return promises. */
export interface DmaBufOps {
  /** Exporter name, for stats and messages. */
  readonly exporter: string;
  /** Called when a device attaches. */
  attach?(buf: DmaBuf, att: Attachment): Promise<void> | void;
  /** Called when a device detaches. */
  detach?(buf: DmaBuf, att: Attachment): Promise<void> | void;
  /** Maps the buffer for an attached device. */
  mapAttachment(att: Attachment, dir: DmaDirection): Promise<SgTable> | SgTable;
  /** Undoes a mapAttachment. */
  unmapAttachment(att: Attachment, sgt: SgTable, dir: DmaDirection): Promise<void> | void;
  /** The CPU is about to access the buffer (cache maintenance; remote sync). */
  beginCpuAccess?(buf: DmaBuf, dir: DmaDirection): Promise<void> | void;
  /** The CPU is done accessing the buffer. */
  endCpuAccess?(buf: DmaBuf, dir: DmaDirection): Promise<void> | void;
  /**
   * One contiguous view of the buffer's `size` bytes (offset applied). Called
   * on the first vmap, and again (`refresh` true) when a vmap is still held
   * but a move made its view stale: the exporter then maps the new location
   * without counting a new vmap.
   */
  vmap(buf: DmaBuf, refresh: boolean): Promise<Uint8Array> | Uint8Array;
  /** Undoes vmap; called when the last vmap user is gone. */
  vunmap(buf: DmaBuf, view: Uint8Array): Promise<void> | void;
  /** A view of one whole page (index within the buffer). Optional. */
  kmap?(buf: DmaBuf, page: number): Promise<Uint8Array> | Uint8Array;
  /** Undoes kmap. */
  kunmap?(buf: DmaBuf, page: number, view: Uint8Array): Promise<void> | void;
  /** The last reference is gone. */
  release(buf: DmaBuf): Promise<void> | void;
  /** A user pins the buffer (its pages must not move); may wait. Optional: the buffer's MoveGate counts pins anyway. */
  pin?(buf: DmaBuf): Promise<void> | void;
  /** Undoes pin. */
  unpin?(buf: DmaBuf): Promise<void> | void;
  /**
   * Dynamic exporters: allocates a new location for the buffer's data and
   * returns how to move there (move.ts runs it with the buffer moving, i.e.
   * no pin, no CPU access, no other move). Without it the buffer cannot move.
   */
  relocate?(buf: DmaBuf): Promise<Relocation> | Relocation;
}

/**
 * What a dynamic importer implements (Linux's dma_buf_attach_ops), in the
 * order a move calls it. prepareMove and abortMove are this model's
 * addition to Linux's move_notify: a cross-VM importer must grant the new
 * pages before it can tell its peers, and granting can fail, which must
 * leave the buffer where it was.
 */
export interface DynamicImporterOps {
  /** Before the data moves: get ready for the new location `to`. Throwing abandons the move (nothing changed). */
  prepareMove?(att: Attachment, to: SgTable): Promise<void> | void;
  /** The move was abandoned after this attachment's prepareMove succeeded: undo it. */
  abortMove?(att: Attachment): Promise<void> | void;
  /**
   * move_notify: the data now lives at the new location (map again to get
   * it). Resolves when this importer has moved on; the `released` promise it
   * may return resolves when nothing of it references the old location any
   * more (only then is the old location freed). MUST NOT reject.
   */
  moveNotify(att: Attachment): Promise<MoveNotifyResult | void> | MoveNotifyResult | void;
}

export type { MoveNotifyResult } from './move.ts';

/**
 * Implicit synchronisation of CPU access: what dma_buf_begin_cpu_access does
 * with dma_buf.resv in Linux (wait for the fences the access must follow).
 * The cross-VM fence layer installs one per buffer that carries fences
 * (src/hyper-dmabuf/sync/); a buffer without one has nothing to wait for.
 */
export interface CpuAccessSync {
  /** Resolves when the access may begin; rejects (e.g. ERR_TIMEOUT, naming what is still pending) otherwise. */
  waitForCpuAccess(buf: DmaBuf, dir: DmaDirection, timeoutMs: number | undefined): Promise<void>;
}

/** Options of beginCpuAccess. */
export interface CpuAccessOptions {
  /** Longest wait for the buffer's fences (default: the CpuAccessSync's own). */
  timeoutMs?: number;
  /** false: no implicit wait (a remote-sync shadow: the importer already waited). Default true. */
  implicitSync?: boolean;
}

/** Buffer lifecycle. */
export const DmaBufState = {
  /** At least one reference. */
  Live: 'live',
  /** The last reference was dropped; leftovers are being undone and the exporter's release runs. */
  Releasing: 'releasing',
  /** Released; every operation is refused. */
  Released: 'released',
} as const;
/** One of the DmaBufState states. */
export type DmaBufState = ValueOf<typeof DmaBufState>;

/** Attachment lifecycle. */
export const AttachmentState = {
  Attached: 'attached',
  Detached: 'detached',
} as const;
/** One of the AttachmentState states. */
export type AttachmentState = ValueOf<typeof AttachmentState>;

/** A device's attachment to a buffer. */
export class Attachment {
  /** Unique within the buffer. */
  readonly id: number;
  /** Name of the attached device. */
  readonly device: string;
  readonly buf: DmaBuf;
  /** Live mappings of this attachment, with their direction. */
  readonly mappings = new Map<SgTable, DmaDirection>();
  /** Importer ops of a dynamic attachment (Linux's importer_ops); undefined for a static one. */
  readonly importerOps: DynamicImporterOps | undefined;
  state: AttachmentState = AttachmentState.Attached;

  constructor(id: number, device: string, buf: DmaBuf, importerOps?: DynamicImporterOps) {
    this.id = id;
    this.device = device;
    this.buf = buf;
    this.importerOps = importerOps;
  }

  /** True for a dynamic attachment: it follows moves instead of pinning the buffer while mapped. */
  get dynamic(): boolean {
    return this.importerOps !== undefined;
  }
}

/** Counts of what a buffer has outstanding. */
export interface DmaBufUse {
  refs: number;
  attachments: number;
  mappings: number;
  cpuAccess: number;
  vmaps: number;
  kmaps: number;
  /** Explicit pins (static mappings pin too, but are counted in mappings). */
  pins: number;
}

let nextBufferId = 1;

/** Construction parameters of a buffer. */
export interface DmaBufInit<P> {
  ops: DmaBufOps;
  geometry: Geometry;
  /** Exporter-private data (Linux's dma_buf->priv). */
  priv: P;
  /** Name, for messages. */
  name?: string;
  /** Generation to start at (an importer's buffer opened after moves of its exporter's; default 0). */
  generation?: number;
}

/** A dma-buf. `P` is the exporter's private data. */
export class DmaBuf<P = unknown> {
  /** Unique in this process (like an inode number). */
  readonly id: number;
  readonly name: string;
  readonly ops: DmaBufOps;
  readonly priv: P;
  /** Pages, offset into the first and end in the last. */
  readonly geometry: Geometry;
  /** Bytes of data. */
  readonly size: number;
  private refs = 1;
  private stateValue: DmaBufState = DmaBufState.Live;
  private readonly attachments = new Set<Attachment>();
  private nextAttachmentId = 1;
  private cpuAccess: DmaDirection[] = [];
  private vmapCount = 0;
  /** The last view vmap produced (stale after a move until refreshed). */
  private vmapView: Uint8Array | undefined;
  private vmapStale = false;
  /** Views made stale by moves that holders may still vunmap. */
  private staleViews = new Set<Uint8Array>();
  private vmapPending: Promise<Uint8Array> | undefined;
  private readonly kmaps: Array<{ page: number; view: Uint8Array }> = [];
  private leftoversValue = 0;
  private undoErrorsValue = 0;
  private generationValue = 0;
  /** Orders moves against pins and CPU access (move-gate.ts). */
  readonly gate = new MoveGate();
  /** Implicit synchronisation of CPU access, if the buffer carries fences (beginCpuAccess waits through it). */
  cpuSync: CpuAccessSync | undefined = undefined;

  /** A new buffer holding one reference (the creator's). */
  constructor(init: DmaBufInit<P>) {
    this.id = nextBufferId++;
    this.ops = init.ops;
    this.priv = init.priv;
    this.geometry = init.geometry;
    this.size = bufferSize(init.geometry);
    this.name = init.name ?? `${init.ops.exporter}#${this.id}`;
    this.generationValue = init.generation ?? 0;
  }

  get state(): DmaBufState {
    return this.stateValue;
  }

  /** References held. */
  get refcount(): number {
    return this.refs;
  }

  /** Things users left behind at the last put, undone automatically (a leak check wants 0). */
  get leftovers(): number {
    return this.leftoversValue;
  }

  /** Undos of leftovers that failed at the last put (their exporter op threw). */
  get undoErrors(): number {
    return this.undoErrorsValue;
  }

  /**
   * Moves of the buffer's pages so far. A CPU view fetched at another
   * generation is stale (detached): fetch it again.
   */
  get generation(): number {
    return this.generationValue;
  }

  /** True if the exporter can move this buffer's pages (it implements relocate). */
  get movable(): boolean {
    return this.ops.relocate !== undefined;
  }

  /** What is outstanding now. */
  use(): DmaBufUse {
    let mappings = 0;
    for (const a of this.attachments) mappings += a.mappings.size;
    return {
      refs: this.refs, attachments: this.attachments.size, mappings,
      cpuAccess: this.cpuAccess.length, vmaps: this.vmapCount, kmaps: this.kmaps.length, pins: this.gate.held.pin,
    };
  }

  /** Dynamic attachments, in attach order (the ones a move notifies). */
  dynamicAttachments(): Attachment[] {
    return [...this.attachments].filter((a) => a.dynamic);
  }

  /** Takes a reference (Linux get_dma_buf). */
  get(): this {
    this.checkLive('get');
    this.refs++;
    return this;
  }

  /**
   * Drops a reference (dma_buf_put). The last one undoes leftovers and runs
   * the exporter's release; the promise settles when that is done.
   */
  put(): Promise<void> {
    this.checkLive('put');
    this.refs--;
    if (this.refs > 0) return Promise.resolve();
    this.stateValue = DmaBufState.Releasing;
    return this.finalRelease();
  }

  /**
   * Attaches a device (dma_buf_attach), or with importer ops a dynamic one
   * (dma_buf_dynamic_attach): that one follows moves (it is told through
   * moveNotify) instead of pinning the buffer while mapped. Waits for a move
   * in progress, so a new dynamic attachment never misses one half-way.
   */
  async attach(device: string, importerOps?: DynamicImporterOps): Promise<Attachment> {
    this.checkLive('attach');
    await this.gate.settled();
    const att = new Attachment(this.nextAttachmentId++, device, this, importerOps);
    await this.ops.attach?.(this, att);
    this.attachments.add(att);
    return att;
  }

  /** Detaches (dma_buf_detach); ERR_BUSY while the attachment is still mapped. */
  async detach(att: Attachment): Promise<void> {
    this.checkAttachment(att, 'detach');
    if (att.mappings.size > 0) throw new ProtocolError('ERR_BUSY', `${this.name}: attachment ${att.id} (${att.device}) still has ${att.mappings.size} mapping(s)`);
    this.attachments.delete(att);
    att.state = AttachmentState.Detached;
    await this.ops.detach?.(this, att);
  }

  /**
   * Maps for the attached device (dma_buf_map_attachment). A static
   * attachment's mapping pins the buffer until unmapped (it waits for a move
   * in progress first); a dynamic one's does not, and is stale after a move.
   */
  async map(att: Attachment, dir: DmaDirection = 'bidirectional'): Promise<SgTable> {
    this.checkAttachment(att, 'map');
    if (!att.dynamic) await this.gate.enter('static-map');
    let sgt: SgTable;
    try {
      sgt = await this.ops.mapAttachment(att, dir);
    } catch (e) {
      if (!att.dynamic) this.gate.leave('static-map');
      throw e;
    }
    att.mappings.set(sgt, dir);
    return sgt;
  }

  /** Unmaps (dma_buf_unmap_attachment). */
  async unmap(att: Attachment, sgt: SgTable): Promise<void> {
    this.checkAttachment(att, 'unmap');
    const dir = att.mappings.get(sgt);
    if (dir === undefined) throw new ProtocolError('ERR_BAD_ARGUMENT', `${this.name}: that table is not mapped on attachment ${att.id}`);
    att.mappings.delete(sgt);
    try {
      await this.ops.unmapAttachment(att, sgt, dir);
    } finally {
      if (!att.dynamic) this.gate.leave('static-map');
    }
  }

  /**
   * Begins CPU access (dma_buf_begin_cpu_access); pair with endCpuAccess.
   * Waits for a move in progress; a move waits for every CPU access to end.
   * With a cpuSync, first waits for the buffer's fences as `dir` demands
   * (a write for every reader and writer, a read for the writers), before
   * entering the gate so that a long wait never holds off a move.
   */
  async beginCpuAccess(dir: DmaDirection = 'bidirectional', opts: CpuAccessOptions = {}): Promise<void> {
    this.checkLive('beginCpuAccess');
    if (opts.implicitSync !== false) await this.cpuSync?.waitForCpuAccess(this, dir, opts.timeoutMs);
    await this.gate.enter('cpu');
    try {
      await this.ops.beginCpuAccess?.(this, dir);
    } catch (e) {
      this.gate.leave('cpu');
      throw e;
    }
    this.cpuAccess.push(dir);
  }

  /** Ends the most recent CPU access; ERR_BAD_ARGUMENT if none began. */
  async endCpuAccess(dir: DmaDirection = 'bidirectional'): Promise<void> {
    this.checkLive('endCpuAccess');
    if (this.cpuAccess.length === 0) throw new ProtocolError('ERR_BAD_ARGUMENT', `${this.name}: endCpuAccess without beginCpuAccess`);
    this.cpuAccess.pop();
    try {
      await this.ops.endCpuAccess?.(this, dir);
    } finally {
      this.gate.leave('cpu');
    }
  }

  /**
   * Pins the buffer: its pages do not move until the matching unpin
   * (dma_buf_pin; counted per buffer here, not per attachment). Waits for a
   * move in progress, so the location is settled when it returns.
   */
  async pin(): Promise<void> {
    this.checkLive('pin');
    await this.ops.pin?.(this);
    await this.gate.enter('pin');
  }

  /** Undoes one pin; ERR_BAD_ARGUMENT if none is held. */
  async unpin(): Promise<void> {
    this.checkLive('unpin');
    if (this.gate.held.pin === 0) throw new ProtocolError('ERR_BAD_ARGUMENT', `${this.name}: unpin without pin`);
    this.gate.leave('pin');
    await this.ops.unpin?.(this);
  }

  /**
   * Moves the buffer's pages (dynamic exporters only; move.ts): waits until
   * no pin or CPU access is held (or fails, if asked not to wait), copies
   * the data, tells every dynamic attachment, and frees the old pages once
   * none of them uses them. Resolves when the old pages are freed.
   */
  move(opts: MoveOptions = {}): Promise<MoveResult> {
    return moveBuffer<DmaBuf, Attachment>(this, opts);
  }

  /**
   * For the buffer's exporter, after it moved the data: every CPU view is
   * stale from now on (the exporter has detached them, or is about to), and
   * the generation becomes `generation`. Holders fetch a new view with vmap;
   * their stale one is still accepted by vunmap (or kunmap).
   */
  invalidateViews(generation: number): void {
    if (!Number.isInteger(generation) || generation <= this.generationValue) {
      throw new ProtocolError('ERR_BAD_ARGUMENT', `${this.name}: generation ${generation} is not after ${this.generationValue}`);
    }
    this.generationValue = generation;
    if (this.vmapView && !this.vmapStale) {
      this.vmapStale = true;
      this.staleViews.add(this.vmapView);
    }
  }

  /**
   * One contiguous view of the data (offset applied), no copy. Counted as
   * in Linux: the exporter's vmap runs on the first call and every caller
   * gets the same view until the matching number of vunmaps. After a move
   * the next call gets a view of the new location (the exporter's vmap is
   * called again with `refresh`), and counts one more vmap.
   */
  async vmap(): Promise<Uint8Array> {
    this.checkLive('vmap');
    await this.gate.settled();
    if (this.vmapView && !this.vmapStale) {
      this.vmapCount++;
      return this.vmapView;
    }
    // Concurrent first (or refreshing) vmaps share one exporter call.
    this.vmapPending ??= Promise.resolve(this.ops.vmap(this, this.vmapCount > 0)).finally(() => { this.vmapPending = undefined; });
    const view = await this.vmapPending;
    this.vmapView = view;
    this.vmapStale = false;
    this.vmapCount++;
    return view;
  }

  /** Drops one vmap (the current view or a stale one); the exporter's vunmap runs when the count reaches 0. */
  async vunmap(view: Uint8Array): Promise<void> {
    this.checkLive('vunmap');
    const current = view === this.vmapView && !this.vmapStale;
    if (this.vmapCount === 0 || (!current && !this.staleViews.has(view))) {
      throw new ProtocolError('ERR_BAD_ARGUMENT', `${this.name}: that view is not this buffer's vmap`);
    }
    if (--this.vmapCount > 0) return;
    const last = this.vmapView ?? view;
    this.vmapView = undefined;
    this.vmapStale = false;
    this.staleViews.clear();
    await this.ops.vunmap(this, last);
  }

  /** A view of one whole page of the buffer (page index from 0); stale after a move (kmap again). */
  async kmap(page: number): Promise<Uint8Array> {
    this.checkLive('kmap');
    if (!this.ops.kmap) throw new ProtocolError('ERR_BAD_ARGUMENT', `${this.name}: exporter ${this.ops.exporter} does not support kmap`);
    if (!Number.isInteger(page) || page < 0 || page >= this.geometry.nents) {
      throw new ProtocolError('ERR_BAD_ARGUMENT', `${this.name}: page ${page} outside [0, ${this.geometry.nents})`);
    }
    await this.gate.settled();
    const view = await this.ops.kmap(this, page);
    this.kmaps.push({ page, view });
    return view;
  }

  /** Undoes a kmap. */
  async kunmap(page: number, view: Uint8Array): Promise<void> {
    this.checkLive('kunmap');
    const at = this.kmaps.findIndex((k) => k.page === page && k.view === view);
    if (at < 0) throw new ProtocolError('ERR_BAD_ARGUMENT', `${this.name}: page ${page} is not kmapped with that view`);
    this.kmaps.splice(at, 1);
    await this.ops.kunmap?.(this, page, view);
  }

  /**
   * Undoes everything still outstanding, newest first, then runs release.
   * An undo that fails is counted and skipped: release must still run.
   */
  private async finalRelease(): Promise<void> {
    const undo = async (fn: () => Promise<void> | void | undefined): Promise<void> => {
      this.leftoversValue++;
      try {
        await fn();
      } catch {
        this.undoErrorsValue++;
      }
    };
    for (const k of this.kmaps.splice(0).reverse()) await undo(() => this.ops.kunmap?.(this, k.page, k.view));
    const view = this.vmapView;
    if (view && this.vmapCount > 0) {
      this.vmapView = undefined;
      this.vmapCount = 0;
      this.staleViews.clear();
      await undo(() => this.ops.vunmap(this, view));
    }
    for (let n = this.gate.held.pin; n > 0; n--) {
      this.gate.leave('pin');
      await undo(() => this.ops.unpin?.(this));
    }
    for (const dir of this.cpuAccess.splice(0).reverse()) {
      this.gate.leave('cpu');
      await undo(() => this.ops.endCpuAccess?.(this, dir));
    }
    for (const att of [...this.attachments].reverse()) {
      for (const [sgt, dir] of [...att.mappings].reverse()) {
        att.mappings.delete(sgt);
        if (!att.dynamic) this.gate.leave('static-map');
        await undo(() => this.ops.unmapAttachment(att, sgt, dir));
      }
      this.attachments.delete(att);
      att.state = AttachmentState.Detached;
      await undo(() => this.ops.detach?.(this, att));
    }
    try {
      await this.ops.release(this);
    } finally {
      this.stateValue = DmaBufState.Released;
    }
  }

  private checkLive(what: string): void {
    if (this.stateValue !== DmaBufState.Live) throw new ProtocolError('ERR_BAD_ARGUMENT', `${this.name}: ${what} on a ${this.stateValue} buffer`);
  }

  private checkAttachment(att: Attachment, what: string): void {
    this.checkLive(what);
    if (att.buf !== this || !this.attachments.has(att)) throw new ProtocolError('ERR_BAD_ARGUMENT', `${this.name}: ${what}: attachment ${att.id} is not attached to this buffer`);
  }
}
