/**
 * Maps other domains' grants into this process (the importer side, like
 * Linux gntdev): one GNTTAB_MAP_GRANT_REF round trip for a whole batch of
 * refs (or, in v2, one GNTTAB_MAP_DIRECTORY for a whole hyper_dmabuf
 * buffer), then one vmap of the granter's RAM file that places every page,
 * in order, into one contiguous ArrayBuffer (one mmap per run of adjacent
 * frames, PROT_READ for read-only grants). Results stay in typed arrays
 * from the wire to the vmap: nothing is allocated per page.
 *
 * Per-entry statuses are always checked (XSA-361): if any entry failed, the
 * handles of every entry that succeeded are released before the typed error
 * is thrown, so a failed map leaves nothing mapped and nothing pinned.
 */
import { GNTMAP, GNTST, INVALID_GRANT_HANDLE } from '../../protocol/grant-abi.ts';
import { MAX_DOMID } from '../../protocol/limits.ts';
import type { DirFormat } from '../../protocol/messages/dmabuf.ts';
import { nativeMem } from '../memory/native.ts';
import { GrantBatchError, GuestError } from './errors.ts';
import { ForeignMapping } from './foreign-mapping.ts';
import { requestDirectoryMap, requestMaps, requestUnmaps, speaksV2, type MapReply } from './foreign-mapper-wire.ts';
import { batches, type Hypercaller } from './hypercalls.ts';
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
  /** GNTTAB_MAP_DIRECTORY requests sent (v2; each also counts in mapRequests). */
  directoryMaps: number;
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
  private readonly counters = { mapRequests: 0, directoryMaps: 0, unmapRequests: 0, maps: 0, failedMaps: 0 };

  constructor(hv: Hypercaller) {
    this.hv = hv;
  }

  /** True if the connection speaks protocol v2, so mapDirectory is available. */
  get speaksV2(): boolean {
    return speaksV2(this.hv);
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
    checkDom(dom);
    if (refs.length === 0) throw new GuestError('ERR_BAD_ARGUMENT', 'no refs to map');
    const refList = Uint32Array.from(refs as ArrayLike<number>);
    this.counters.mapRequests += batches(refList.length, this.hv.maxBatch).length;
    const reply = await requestMaps(this.hv, dom, mapFlags(options), refList);
    return this.finishMap(dom, refList, reply, options, `mapping ${refList.length} grants of dom${dom}`);
  }

  /**
   * Maps a whole hyper_dmabuf buffer of `dom` from its gref directory in one
   * round trip (v2, GNTTAB_MAP_DIRECTORY, SPEC.md 7.7): the backend reads the
   * directory with every check of a map and maps the data pages; this
   * process then maps their frames (one mmap per run). Throws
   * ERR_BAD_DIRECTORY as the backend found it, or GrantBatchError
   * ERR_GRANT_MAP (a directory page or a data page failed), after releasing
   * every handle that was mapped. `dirPages` of the result tells how many
   * directory pages were read.
   */
  async mapDirectory(dom: number, format: DirFormat, dirRef: number, nents: number, options: MapGrantsOptions): Promise<{ mapping: ForeignMapping; dirPages: number }> {
    checkDom(dom);
    if (!speaksV2(this.hv)) throw new GuestError('ERR_BAD_ARGUMENT', 'GNTTAB_MAP_DIRECTORY needs protocol version 2');
    this.counters.mapRequests++;
    this.counters.directoryMaps++;
    const reply = await requestDirectoryMap(this.hv, dom, mapFlags(options), format, dirRef, nents);
    const dirFailed = reply.dirStatus.findIndex((st) => st !== GNTST.okay);
    if (dirFailed >= 0) {
      this.counters.failedMaps++;
      throw new GrantBatchError('ERR_GRANT_MAP', `mapping directory page ${dirFailed} (ref ${reply.dirRefs[dirFailed]}) of dom${dom}`, reply.dirStatus, { dom });
    }
    // The data refs are the backend's to know; the mapping records the order it mapped them in through the frames.
    const mapping = await this.finishMap(dom, new Uint32Array(0), reply, options, `mapping ${nents} pages of dom${dom} from its directory`);
    return { mapping, dirPages: reply.dirRefs.length };
  }

  /**
   * Second half of every map: checks every status (XSA-361), releases the
   * okay handles if anything failed, else maps the frames into one view
   * (one mmap per run of adjacent frames).
   */
  private async finishMap(dom: number, refs: Uint32Array, reply: MapReply, options: MapGrantsOptions, what: string): Promise<ForeignMapping> {
    const { status, handles, frames } = reply;
    let failure = reply.failure;
    if (failure === undefined && !allOkay(status)) {
      failure = new GrantBatchError('ERR_GRANT_MAP', what, status, { dom });
    }
    if (failure !== undefined) {
      this.counters.failedMaps++;
      await this.releaseHandles(handles.filter((h, i) => status[i] === GNTST.okay && h !== INVALID_GRANT_HANDLE));
      throw failure;
    }
    const ramPath = reply.ramPath!;
    const lease = this.fds.acquire(ramPath, dom);
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
      { dom, refs, readonly: options.readonly, handles, frames, ramPath, view, mapRequests: reply.requests },
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
    if (!allOkay(status)) {
      throw new GrantBatchError('ERR_GRANT_UNMAP', `unmapping ${mapping.pages} grants of dom${mapping.dom}`, status, { dom: mapping.dom });
    }
  }

  /** Releases handles at the backend (requestUnmaps); returns their statuses. */
  private async releaseHandles(handles: Uint32Array): Promise<Int32Array> {
    if (handles.length === 0) return new Int32Array(0);
    const { status, requests } = await requestUnmaps(this.hv, handles);
    this.counters.unmapRequests += requests;
    return status;
  }
}

/** True if every status is GNTST_okay (a plain loop: a callback per entry costs more than the map of 8,100 entries). */
function allOkay(status: ArrayLike<number>): boolean {
  for (let i = 0; i < status.length; i++) if (status[i] !== GNTST.okay) return false;
  return true;
}

function checkDom(dom: number): void {
  if (!Number.isInteger(dom) || dom < 0 || dom > MAX_DOMID) throw new GuestError('ERR_BAD_ARGUMENT', `domain ${dom} out of range`);
}

function mapFlags(options: MapGrantsOptions): number {
  return GNTMAP.host_map | (options.readonly ? GNTMAP.readonly : 0);
}
