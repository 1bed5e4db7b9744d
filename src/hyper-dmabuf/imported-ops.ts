/**
 * The dma-buf operations of an importer's local buffers (one DmaBuf per
 * fd): CPU access goes to the mapped grant pages, and every operation is
 * mirrored to the exporter (OPS_TO_SOURCE), acknowledged or not as the fd
 * was opened. A "do" operation is sent before it takes effect locally, so
 * an exporter's refusal (acknowledged mode) fails it; an "undo" is sent
 * after. The original's importer vmap and kmap returned NULL; these return
 * the mapped pages.
 *
 * After a move (SPEC.md 11.8) the views of the old pages are detached; the
 * next vmap, kmap or map maps the new pages if that was not done yet (lazy
 * remap), and a refreshing vmap is not mirrored again (the exporter already
 * counts the one vmap this buffer holds). pin and unpin are always mirrored
 * acknowledged.
 */
import { PAGE_SIZE } from '../../protocol/limits.ts';
import type { DmaDirection, SyncOp } from '../../protocol/messages/dmabuf.ts';
import type { DmaBuf, DmaBufOps } from '../dmabuf/dma-buf.ts';
import { SgTable } from '../dmabuf/sg-table.ts';
import type { ForeignMapping } from '../guest/foreign-mapping.ts';
import type { ImportedBuffer } from './import-entry.ts';
import type { SyncMode } from './options.ts';

/** The outcome of an fd's EXPORT_FD (Importer.confirmation). */
export type FdConfirmation = 'counted' | 'revoked' | 'unanswered';

/** Private data of an importer's local dma-buf. */
export interface ImportedFdPriv {
  readonly entry: ImportedBuffer;
  readonly fdId: number;
  readonly sync: SyncMode;
  /** A version-2 early fd: settles when the exporter's answer has been applied (SPEC.md 11.2 rule 2). */
  confirmation?: Promise<FdConfirmation>;
  /** The exporter's refusal of an early fd: the fd is revoked. */
  revoked?: string;
  /** Why an early fd's EXPORT_FD got no answer (a timeout, or the exporter is gone). */
  unanswered?: unknown;
}

/** What the ops need from the importer. */
export interface ImportedOpsSink {
  /** Mirrors an op to the exporter (or not, if it is dead). */
  sendOp(priv: ImportedFdPriv, op: Exclude<SyncOp, 'release'>, extra?: { dir?: DmaDirection; page?: number }): Promise<void>;
  /** The fd's last reference is gone. */
  releaseFd(priv: ImportedFdPriv): Promise<void>;
  /** The current mapping of the fd's import, mapped again if a move invalidated it. */
  mapping(priv: ImportedFdPriv): Promise<ForeignMapping>;
}

function privOf(buf: DmaBuf): ImportedFdPriv {
  return buf.priv as ImportedFdPriv;
}

/** The ops shared by every imported buffer of one driver. */
export function importedOps(sink: ImportedOpsSink): DmaBufOps {
  return {
    exporter: 'hyper_dmabuf',
    attach: (buf) => sink.sendOp(privOf(buf), 'attach'),
    detach: (buf) => sink.sendOp(privOf(buf), 'detach'),
    async mapAttachment(att, dir) {
      const p = privOf(att.buf);
      await sink.sendOp(p, 'map', { dir });
      const g = p.entry.geometry;
      // The exporter's frames, as the backend reported them when it mapped the grants.
      return new SgTable(p.entry.exporter, (await sink.mapping(p)).frames, g.firstOffset, g.lastLength);
    },
    unmapAttachment: (att, _sgt, dir) => sink.sendOp(privOf(att.buf), 'unmap', { dir }),
    beginCpuAccess: (buf, dir) => sink.sendOp(privOf(buf), 'begin_cpu_access', { dir }),
    endCpuAccess: (buf, dir) => sink.sendOp(privOf(buf), 'end_cpu_access', { dir }),
    async vmap(buf, refresh) {
      const p = privOf(buf);
      if (!refresh) await sink.sendOp(p, 'vmap');
      // The grant pages themselves, offset applied: no copy. Read-only grants are PROT_READ.
      return new Uint8Array((await sink.mapping(p)).view, p.entry.geometry.firstOffset, p.entry.size);
    },
    vunmap: (buf) => sink.sendOp(privOf(buf), 'vunmap'),
    async kmap(buf, page) {
      const p = privOf(buf);
      await sink.sendOp(p, 'kmap', { page });
      return new Uint8Array((await sink.mapping(p)).view, page * PAGE_SIZE, PAGE_SIZE);
    },
    kunmap: (buf, page) => sink.sendOp(privOf(buf), 'kunmap', { page }),
    pin: (buf) => sink.sendOp(privOf(buf), 'pin'),
    unpin: (buf) => sink.sendOp(privOf(buf), 'unpin'),
    release: (buf) => sink.releaseFd(privOf(buf)),
  };
}
