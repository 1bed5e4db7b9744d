/**
 * Maps other domains' grants into this process (the importer side, like
 * Linux gntdev): one GNTTAB_MAP_GRANT_REF round trip for a whole batch of
 * refs, then one vmap of the granter's RAM file that places every page, in
 * ref order, into one contiguous ArrayBuffer (one mmap per run of adjacent
 * pages, PROT_READ for read-only grants).
 *
 * Per-entry statuses are always checked (XSA-361): if any entry failed, the
 * handles of every entry that succeeded are released before the typed error
 * is thrown, so a failed map leaves nothing mapped and nothing pinned.
 */
import { GNTMAP, GNTST, INVALID_GRANT_HANDLE } from '../../protocol/grant-abi.ts';
import { MAX_DOMID } from '../../protocol/limits.ts';
import { GNTTAB_MAP_GRANT_REF, GNTTAB_UNMAP_GRANT_REF } from '../../protocol/messages/grant.ts';
import { nativeMem } from '../memory/native.ts';
import { GrantBatchError, GuestError } from './errors.ts';
import { ForeignMapping } from './foreign-mapping.ts';
import { batches, isConnectionClosed, type Hypercaller } from './hypercalls.ts';
import { ShmFdCache, type FdLease } from './shm-fd-cache.ts';

/** Options of one map. */
export interface MapGrantsOptions {
  /** Map read-only (GNTMAP_readonly, PROT_READ). Required for read-only grants. */
  readonly: boolean;
}

/** Counters, for stats and the one-round-trip proofs. */
export interface ForeignMapperStats {
  /** GNTTAB_MAP_GRANT_REF requests sent. */
  mapRequests: number;
  /** GNTTAB_UNMAP_GRANT_REF requests sent. */
  unmapRequests: number;
  /** Successful mapGrants calls. */
  maps: number;
  /** mapGrants calls that failed (and were fully undone). */
  failedMaps: number;
  /** Mappings live now. */
  liveMappings: number;
  /** Pages mapped now. */
  livePages: number;
  /** Peers' RAM files open now. */
  openFiles: number;
}

/** Maps and unmaps foreign grants for one domain. */
export class ForeignMapper {
  private readonly hv: Hypercaller;
  private readonly fds = new ShmFdCache();
  private readonly live = new Set<ForeignMapping>();
  private readonly leases = new WeakMap<ForeignMapping, FdLease>();
  private readonly counters = { mapRequests: 0, unmapRequests: 0, maps: 0, failedMaps: 0 };

  constructor(hv: Hypercaller) {
    this.hv = hv;
  }

  /** Mappings live now. */
  get mappings(): ReadonlySet<ForeignMapping> {
    return this.live;
  }

  /**
   * Maps every ref of domain `dom`, in order, into one contiguous view. One
   * round trip (more only past the backend's maxBatch). Throws GrantBatchError
   * (ERR_GRANT_MAP, statuses by GNTST name) if any entry failed, after
   * releasing the ones that succeeded.
   */
  async mapGrants(dom: number, refs: ArrayLike<number>, options: MapGrantsOptions): Promise<ForeignMapping> {
    if (!Number.isInteger(dom) || dom < 0 || dom > MAX_DOMID) throw new GuestError('ERR_BAD_ARGUMENT', `domain ${dom} out of range`);
    const n = refs.length;
    if (n === 0) throw new GuestError('ERR_BAD_ARGUMENT', 'no refs to map');
    const refList = Uint32Array.from(refs as ArrayLike<number>);
    const flags = GNTMAP.host_map | (options.readonly ? GNTMAP.readonly : 0);
    const status = new Int32Array(n).fill(GNTST.general_error);
    const handles = new Uint32Array(n).fill(INVALID_GRANT_HANDLE);
    const frames = new Uint32Array(n);
    const slices = batches(n, this.hv.maxBatch);
    this.counters.mapRequests += slices.length;
    const replies = await Promise.allSettled(slices.map(([s, e]) =>
      this.hv.call(GNTTAB_MAP_GRANT_REF, { dom, flags, refs: Array.from(refList.subarray(s, e)) })));

    let ramPath: string | undefined;
    let failure: unknown;
    replies.forEach((reply, i) => {
      const [s, e] = slices[i]!;
      if (reply.status === 'rejected') { failure ??= reply.reason; return; }
      const r = reply.value;
      if (r.status.length !== e - s || r.handle.length !== e - s || r.frame.length !== e - s) {
        failure ??= new GuestError('ERR_GRANT_MAP', `GNTTAB_MAP_GRANT_REF answered ${r.status.length} statuses for ${e - s} refs`);
      }
      if (ramPath !== undefined && r.ramPath !== ramPath) failure ??= new GuestError('ERR_GRANT_MAP', `batches of dom${dom} named two RAM files`);
      ramPath ??= r.ramPath;
      for (let j = 0; j < e - s && j < r.status.length; j++) {
        status[s + j] = r.status[j]!;
        if (r.status[j] === GNTST.okay) {
          handles[s + j] = r.handle[j]!;
          frames[s + j] = r.frame[j]!;
        }
      }
    });
    if (failure === undefined && status.some((st) => st !== GNTST.okay)) {
      failure = new GrantBatchError('ERR_GRANT_MAP', `mapping ${n} grants of dom${dom}`, status, { dom });
    }
    if (failure !== undefined) {
      this.counters.failedMaps++;
      await this.releaseHandles(handles.filter((h, i) => status[i] === GNTST.okay && h !== INVALID_GRANT_HANDLE));
      throw failure;
    }

    const lease = this.fds.acquire(ramPath!, dom);
    let view: ArrayBuffer;
    try {
      view = nativeMem.mapPages(lease.fd, frames, !options.readonly);
    } catch (e) {
      // Never half-mapped (the addon guarantees it); give the grants back too.
      this.fds.release(lease);
      this.counters.failedMaps++;
      await this.releaseHandles(handles);
      throw e;
    }
    const mapping = new ForeignMapping(
      { dom, refs: refList, readonly: options.readonly, handles, frames, ramPath: ramPath!, view, mapRequests: slices.length },
      (m) => this.finishUnmap(m),
    );
    this.live.add(mapping);
    this.leases.set(mapping, lease);
    this.counters.maps++;
    return mapping;
  }

  /** The granter died: stop caching its RAM file (its domid may be reused). Live mappings stay valid. */
  onPeerDied(dom: number): void {
    this.fds.invalidateDomain(dom);
  }

  /** Unmaps every live mapping (shutdown), then closes the cached files. */
  async unmapAll(): Promise<void> {
    await Promise.allSettled([...this.live].map((m) => m.unmap()));
    this.fds.closeAll();
  }

  /** Counters. */
  stats(): ForeignMapperStats {
    let livePages = 0;
    for (const m of this.live) livePages += m.pages;
    return { ...this.counters, liveMappings: this.live.size, livePages, openFiles: this.fds.openCount };
  }

  /** Second half of ForeignMapping.unmap(): the view is already detached. */
  private async finishUnmap(mapping: ForeignMapping): Promise<void> {
    this.live.delete(mapping);
    const lease = this.leases.get(mapping);
    if (lease) { this.leases.delete(mapping); this.fds.release(lease); }
    const status = await this.releaseHandles(mapping.handles);
    if (status.some((s) => s !== GNTST.okay)) {
      throw new GrantBatchError('ERR_GRANT_UNMAP', `unmapping ${mapping.pages} grants of dom${mapping.dom}`, status, { dom: mapping.dom });
    }
  }

  /**
   * GNTTAB_UNMAP_GRANT_REF for all handles, one round trip per maxBatch.
   * If the connection is gone, the backend has already released every
   * mapping of this domain (domain death), so that counts as done.
   */
  private async releaseHandles(handles: ArrayLike<number>): Promise<number[]> {
    if (handles.length === 0) return [];
    const list = Array.from(handles);
    const slices = batches(list.length, this.hv.maxBatch);
    this.counters.unmapRequests += slices.length;
    const out: number[] = [];
    for (const [s, e] of slices) {
      try {
        const r = await this.hv.call(GNTTAB_UNMAP_GRANT_REF, { handles: list.slice(s, e) });
        out.push(...r.status);
      } catch (e2) {
        if (!isConnectionClosed(e2)) throw e2;
        out.push(...new Array<number>(e - s).fill(GNTST.okay));
      }
    }
    return out;
  }
}
