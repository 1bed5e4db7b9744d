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
 */
import { ProtocolError } from '../../protocol/errors.ts';
import type { DmaDirection } from '../../protocol/messages/dmabuf.ts';
import { bufferSize, type Geometry } from './geometry.ts';
import type { SgTable } from './sg-table.ts';

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
  /** One contiguous view of the buffer's `size` bytes (offset applied). Called on the first vmap only. */
  vmap(buf: DmaBuf): Promise<Uint8Array> | Uint8Array;
  /** Undoes vmap; called when the last vmap user is gone. */
  vunmap(buf: DmaBuf, view: Uint8Array): Promise<void> | void;
  /** A view of one whole page (index within the buffer). Optional. */
  kmap?(buf: DmaBuf, page: number): Promise<Uint8Array> | Uint8Array;
  /** Undoes kmap. */
  kunmap?(buf: DmaBuf, page: number, view: Uint8Array): Promise<void> | void;
  /** The last reference is gone. */
  release(buf: DmaBuf): Promise<void> | void;
}

/** Buffer lifecycle. */
export enum DmaBufState {
  /** At least one reference. */
  Live = 'live',
  /** The last reference was dropped; leftovers are being undone and the exporter's release runs. */
  Releasing = 'releasing',
  /** Released; every operation is refused. */
  Released = 'released',
}

/** Attachment lifecycle. */
export enum AttachmentState {
  Attached = 'attached',
  Detached = 'detached',
}

/** A device's attachment to a buffer. */
export class Attachment {
  /** Unique within the buffer. */
  readonly id: number;
  /** Name of the attached device. */
  readonly device: string;
  readonly buf: DmaBuf;
  /** Live mappings of this attachment, with their direction. */
  readonly mappings = new Map<SgTable, DmaDirection>();
  state: AttachmentState = AttachmentState.Attached;

  constructor(id: number, device: string, buf: DmaBuf) {
    this.id = id;
    this.device = device;
    this.buf = buf;
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
  private stateValue = DmaBufState.Live;
  private readonly attachments = new Set<Attachment>();
  private nextAttachmentId = 1;
  private cpuAccess: DmaDirection[] = [];
  private vmapCount = 0;
  private vmapView: Uint8Array | undefined;
  private vmapPending: Promise<Uint8Array> | undefined;
  private readonly kmaps: Array<{ page: number; view: Uint8Array }> = [];
  private leftoversValue = 0;
  private undoErrorsValue = 0;

  /** A new buffer holding one reference (the creator's). */
  constructor(init: DmaBufInit<P>) {
    this.id = nextBufferId++;
    this.ops = init.ops;
    this.priv = init.priv;
    this.geometry = init.geometry;
    this.size = bufferSize(init.geometry);
    this.name = init.name ?? `${init.ops.exporter}#${this.id}`;
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

  /** What is outstanding now. */
  use(): DmaBufUse {
    let mappings = 0;
    for (const a of this.attachments) mappings += a.mappings.size;
    return {
      refs: this.refs, attachments: this.attachments.size, mappings,
      cpuAccess: this.cpuAccess.length, vmaps: this.vmapCount, kmaps: this.kmaps.length,
    };
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

  /** Attaches a device (dma_buf_attach). */
  async attach(device: string): Promise<Attachment> {
    this.checkLive('attach');
    const att = new Attachment(this.nextAttachmentId++, device, this);
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

  /** Maps for the attached device (dma_buf_map_attachment). */
  async map(att: Attachment, dir: DmaDirection = 'bidirectional'): Promise<SgTable> {
    this.checkAttachment(att, 'map');
    const sgt = await this.ops.mapAttachment(att, dir);
    att.mappings.set(sgt, dir);
    return sgt;
  }

  /** Unmaps (dma_buf_unmap_attachment). */
  async unmap(att: Attachment, sgt: SgTable): Promise<void> {
    this.checkAttachment(att, 'unmap');
    const dir = att.mappings.get(sgt);
    if (dir === undefined) throw new ProtocolError('ERR_BAD_ARGUMENT', `${this.name}: that table is not mapped on attachment ${att.id}`);
    att.mappings.delete(sgt);
    await this.ops.unmapAttachment(att, sgt, dir);
  }

  /** Begins CPU access (dma_buf_begin_cpu_access); pair with endCpuAccess. */
  async beginCpuAccess(dir: DmaDirection = 'bidirectional'): Promise<void> {
    this.checkLive('beginCpuAccess');
    await this.ops.beginCpuAccess?.(this, dir);
    this.cpuAccess.push(dir);
  }

  /** Ends the most recent CPU access; ERR_BAD_ARGUMENT if none began. */
  async endCpuAccess(dir: DmaDirection = 'bidirectional'): Promise<void> {
    this.checkLive('endCpuAccess');
    if (this.cpuAccess.length === 0) throw new ProtocolError('ERR_BAD_ARGUMENT', `${this.name}: endCpuAccess without beginCpuAccess`);
    this.cpuAccess.pop();
    await this.ops.endCpuAccess?.(this, dir);
  }

  /**
   * One contiguous view of the data (offset applied), no copy. Counted as
   * in Linux: the exporter's vmap runs on the first call and every caller
   * gets the same view until the matching number of vunmaps.
   */
  async vmap(): Promise<Uint8Array> {
    this.checkLive('vmap');
    if (this.vmapView) {
      this.vmapCount++;
      return this.vmapView;
    }
    // Concurrent first vmaps share one exporter call.
    this.vmapPending ??= Promise.resolve(this.ops.vmap(this)).finally(() => { this.vmapPending = undefined; });
    const view = await this.vmapPending;
    this.vmapView = view;
    this.vmapCount++;
    return view;
  }

  /** Drops one vmap; the exporter's vunmap runs when the count reaches 0. */
  async vunmap(view: Uint8Array): Promise<void> {
    this.checkLive('vunmap');
    if (!this.vmapView || view !== this.vmapView) throw new ProtocolError('ERR_BAD_ARGUMENT', `${this.name}: that view is not this buffer's vmap`);
    if (--this.vmapCount > 0) return;
    this.vmapView = undefined;
    await this.ops.vunmap(this, view);
  }

  /** A view of one whole page of the buffer (page index from 0). */
  async kmap(page: number): Promise<Uint8Array> {
    this.checkLive('kmap');
    if (!this.ops.kmap) throw new ProtocolError('ERR_BAD_ARGUMENT', `${this.name}: exporter ${this.ops.exporter} does not support kmap`);
    if (!Number.isInteger(page) || page < 0 || page >= this.geometry.nents) {
      throw new ProtocolError('ERR_BAD_ARGUMENT', `${this.name}: page ${page} outside [0, ${this.geometry.nents})`);
    }
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
    if (view) {
      this.vmapView = undefined;
      this.vmapCount = 0;
      await undo(() => this.ops.vunmap(this, view));
    }
    for (const dir of this.cpuAccess.splice(0).reverse()) await undo(() => this.ops.endCpuAccess?.(this, dir));
    for (const att of [...this.attachments].reverse()) {
      for (const [sgt, dir] of [...att.mappings].reverse()) {
        att.mappings.delete(sgt);
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
