/**
 * The exporter's shadow bookkeeping of one importer fd (remote sync,
 * OPS_TO_SOURCE): every operation the importer does on its local dma-buf is
 * repeated on the exporter's real buffer, so the exporter's own drivers see
 * the buffer as in use. Each kind of operation is a stack: a "do" pushes,
 * the matching "undo" pops the newest entry of its kind. Release undoes all
 * that is left, newest first (the original forgot its shadow attachments).
 * A shadow map is a static mapping and a shadow pin a pin: both keep the
 * buffer from moving, as the importer's device needs (SPEC.md 11.8).
 */
import { ProtocolError } from '../../protocol/errors.ts';
import type { DmaDirection, SyncOp } from '../../protocol/messages/dmabuf.ts';
import type { Attachment, DmaBuf, DmaBufUse } from '../dmabuf/dma-buf.ts';
import type { SgTable } from '../dmabuf/sg-table.ts';

/** Counts of what a shadow holds: a buffer's use counts (DmaBufUse) but references (a shadow holds none of its own). */
export type ShadowUse = Omit<DmaBufUse, 'refs'>;

/** The shadow state of one (importer, fdId). */
export class ShadowFd {
  /** Device name the shadow attachments use, e.g. `hyper_dmabuf:dom2:fd1`. */
  readonly device: string;
  private readonly attachments: Attachment[] = [];
  private readonly maps: Array<{ att: Attachment; sgt: SgTable }> = [];
  private readonly cpu: DmaDirection[] = [];
  private readonly vmaps: Uint8Array[] = [];
  private readonly kmaps: Array<{ page: number; view: Uint8Array }> = [];
  /** Pins taken (each keeps the buffer's pages from moving). */
  private pins = 0;

  constructor(device: string) {
    this.device = device;
  }

  /** What is outstanding. */
  use(): ShadowUse {
    return { attachments: this.attachments.length, mappings: this.maps.length, cpuAccess: this.cpu.length, vmaps: this.vmaps.length, kmaps: this.kmaps.length, pins: this.pins };
  }

  /** Entries outstanding, all kinds. */
  get outstanding(): number {
    const u = this.use();
    return u.attachments + u.mappings + u.cpuAccess + u.vmaps + u.kmaps + u.pins;
  }

  /**
   * Mirrors one operation (not release) on `buf`. ERR_BAD_ARGUMENT for an
   * undo with nothing to undo, ERR_BUSY for a detach of a mapped attachment.
   */
  async apply(buf: DmaBuf, op: Exclude<SyncOp, 'release'>, dir: DmaDirection, page: number): Promise<void> {
    switch (op) {
      case 'attach':
        this.attachments.push(await buf.attach(this.device));
        return;
      case 'detach': {
        const att = this.top(this.attachments, op);
        if (this.maps.some((m) => m.att === att)) throw new ProtocolError('ERR_BUSY', `${this.device}: detach while the attachment is mapped`);
        this.attachments.pop();
        await buf.detach(att);
        return;
      }
      case 'map': {
        const att = this.top(this.attachments, op);
        this.maps.push({ att, sgt: await buf.map(att, dir) });
        return;
      }
      case 'unmap': {
        const m = this.top(this.maps, op);
        this.maps.pop();
        await buf.unmap(m.att, m.sgt);
        return;
      }
      case 'begin_cpu_access':
        // No implicit wait here: the importer's own begin_cpu_access already waited for this
        // buffer's fences (DMABUF_RESV_GET), and waiting again would stall this export's op queue.
        await buf.beginCpuAccess(dir, { implicitSync: false });
        this.cpu.push(dir);
        return;
      case 'end_cpu_access':
        this.top(this.cpu, op);
        this.cpu.pop();
        await buf.endCpuAccess(dir);
        return;
      case 'vmap':
        this.vmaps.push(await buf.vmap());
        return;
      case 'vunmap': {
        const view = this.top(this.vmaps, op);
        this.vmaps.pop();
        await buf.vunmap(view);
        return;
      }
      case 'kmap':
        // The page the importer named (the original always kmapped page 1).
        this.kmaps.push({ page, view: await buf.kmap(page) });
        return;
      case 'kunmap': {
        let at = -1;
        for (let i = this.kmaps.length - 1; i >= 0 && at < 0; i--) if (this.kmaps[i]!.page === page) at = i;
        if (at < 0) throw new ProtocolError('ERR_BAD_ARGUMENT', `${this.device}: kunmap of page ${page}, which is not kmapped`);
        const [k] = this.kmaps.splice(at, 1);
        await buf.kunmap(k!.page, k!.view);
        return;
      }
      case 'pin':
        // Waits for a move in progress: answered after the importer acknowledged its MOVE_NOTIFY.
        await buf.pin();
        this.pins++;
        return;
      case 'unpin':
        if (this.pins === 0) throw new ProtocolError('ERR_BAD_ARGUMENT', `${this.device}: unpin with nothing to undo`);
        this.pins--;
        await buf.unpin();
        return;
    }
  }

  /** Undoes everything outstanding, newest first; failures are counted, not thrown. Returns the count undone. */
  async undoAll(buf: DmaBuf): Promise<{ undone: number; failed: number }> {
    let undone = 0;
    let failed = 0;
    const step = async (fn: () => Promise<void>): Promise<void> => {
      undone++;
      try { await fn(); } catch { failed++; }
    };
    for (const k of this.kmaps.splice(0).reverse()) await step(() => buf.kunmap(k.page, k.view));
    for (const v of this.vmaps.splice(0).reverse()) await step(() => buf.vunmap(v));
    for (; this.pins > 0; this.pins--) await step(() => buf.unpin());
    for (const d of this.cpu.splice(0).reverse()) await step(() => buf.endCpuAccess(d));
    for (const m of this.maps.splice(0).reverse()) await step(() => buf.unmap(m.att, m.sgt));
    for (const a of this.attachments.splice(0).reverse()) await step(() => buf.detach(a));
    return { undone, failed };
  }

  private top<T>(stack: T[], op: string): T {
    const t = stack[stack.length - 1];
    if (t === undefined) throw new ProtocolError('ERR_BAD_ARGUMENT', `${this.device}: ${op} with nothing to undo`);
    return t;
  }
}
