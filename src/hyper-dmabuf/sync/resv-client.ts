/**
 * The importer side of reservation objects across VMs: an fd opened on an
 * import adds fences to, and reads snapshots of, the reservation object its
 * exporter keeps for the buffer (DMABUF_RESV_ADD, DMABUF_RESV_GET).
 *
 * Fences go out as the fence layer's references (FenceHost.prepareExport:
 * leaves, each holding a slot count until the exporter has read its final
 * status), and come back as imported fences (FenceHost.importRefs). A
 * refused add returns the counts at once.
 */
import { ProtocolError } from '../../../protocol/errors.ts';
import { DMABUF_RESV_ADD, DMABUF_RESV_GET, RESV_USAGES, type ResvPeerUsageName, type ResvUsageName } from '../../../protocol/messages/dmabuf-sync.ts';
import { DmaBufState, type DmaBuf } from '../../dmabuf/dma-buf.ts';
import type { DmaFence } from '../../fence/dma-fence.ts';
import type { DmaResvUsage } from '../../fence/dma-resv.ts';
import type { SyncFile } from '../../fence/sync-file.ts';
import type { FenceHost } from '../../fence-remote/fence-host.ts';
import { RemoteError } from '../../transport/rpc-connection.ts';
import type { HvClient } from '../../transport/hv-client.ts';
import { formatHid } from '../hid.ts';
import { ImportedBuffer } from '../import-entry.ts';
import type { ImportedFdPriv } from '../imported-ops.ts';
import type { AddResult, ResvFence } from './shared-resv.ts';

/** An importer's fd: a local dma-buf over an import. */
export type ImportedFd = DmaBuf<ImportedFdPriv>;

/** True if `buf` is an fd this domain opened on an import (rather than a buffer of its own). */
export function isImportedFd(buf: DmaBuf): buf is ImportedFd {
  const priv = buf.priv as Partial<ImportedFdPriv> | null | undefined;
  return typeof priv === 'object' && priv !== null && priv.entry instanceof ImportedBuffer && typeof priv.fdId === 'number';
}

/** Counters of the importer side. */
export interface ResvClientStats {
  adds: number;
  addsRefused: number;
  gets: number;
  /** Fences received in GET answers. */
  fencesReceived: number;
}

/** Adds and reads through an importer's fds. */
export class ResvClient {
  readonly #hv: HvClient;
  readonly #fences: FenceHost;
  readonly #timeoutMs: number | undefined;
  readonly #stats: ResvClientStats = { adds: 0, addsRefused: 0, gets: 0, fencesReceived: 0 };

  /** @param timeoutMs request timeout (default: the connection's) */
  constructor(hv: HvClient, fences: FenceHost, timeoutMs?: number) {
    this.#hv = hv;
    this.#fences = fences;
    this.#timeoutMs = timeoutMs;
  }

  /** Counters. */
  stats(): ResvClientStats {
    return { ...this.#stats };
  }

  /**
   * Adds every leaf of `what` to the buffer's reservation object with
   * `usage` (DMABUF_RESV_ADD). Resolves with what the exporter did.
   * @throws ProtocolError the exporter's refusal (slot counts returned), ERR_PEER_GONE
   */
  async add(fd: ImportedFd, what: DmaFence | SyncFile, usage: ResvPeerUsageName, timeoutMs = this.#timeoutMs): Promise<AddResult> {
    const entry = this.#check(fd);
    if (entry.exporterDead) throw new ProtocolError('ERR_PEER_GONE', `the exporter of ${formatHid(entry.hid)}, dom${entry.exporter}, died`);
    const prepared = await this.#fences.prepareExport(entry.exporter, what);
    try {
      const r = await this.#hv.peerRequest(DMABUF_RESV_ADD, entry.exporter, { hid: entry.hid, fdId: fd.priv.fdId, usage, fences: prepared.refs }, timeoutMs);
      this.#stats.adds++;
      return r;
    } catch (e) {
      this.#stats.addsRefused++;
      // A refusal holds nothing on the exporter; no answer may mean it imported them (it returns them later).
      if (e instanceof RemoteError) prepared.abort();
      throw e;
    }
  }

  /**
   * A snapshot of the pending fences a new access must wait for, stored
   * with `usage` or stronger (DMABUF_RESV_GET), as fences of this domain.
   * Empty when nothing is pending, and when the exporter died: every fence
   * its reservation object held completed with -EPIPE or before.
   */
  async get(fd: ImportedFd, usage: ResvUsageName, timeoutMs = this.#timeoutMs): Promise<ResvFence[]> {
    const entry = this.#check(fd);
    if (entry.exporterDead) return [];
    const r = await this.#hv.peerRequest(DMABUF_RESV_GET, entry.exporter, { hid: entry.hid, fdId: fd.priv.fdId, usage }, timeoutMs);
    this.#stats.gets++;
    if (r.fences.length === 0) return [];
    // Imported first, whatever else is wrong with the answer: that is how the slot counts go back.
    const leaves = this.#fences.importRefs(entry.exporter, r.fences);
    this.#stats.fencesReceived += leaves.length;
    const fallback = RESV_USAGES.indexOf(usage) as DmaResvUsage;
    return leaves.map((fence, i) => {
      const u = r.usages[i];
      // A usage weaker than asked for, or missing, is the exporter's mistake: count the fence at the asked level.
      const at = u === undefined ? -1 : RESV_USAGES.indexOf(u);
      return { fence, usage: (at >= 0 && at <= fallback ? at : fallback) as DmaResvUsage };
    });
  }

  #check(fd: ImportedFd): ImportedBuffer {
    if (fd.state !== DmaBufState.Live) throw new ProtocolError('ERR_BAD_ARGUMENT', `${fd.name} is ${fd.state}`);
    const entry = fd.priv.entry;
    if (!entry.fds.has(fd.priv.fdId)) throw new ProtocolError('ERR_BAD_ARGUMENT', `${fd.name}: fd ${fd.priv.fdId} is released`);
    return entry;
  }
}
