/**
 * Fences on shared buffers, for one domain: the reservation object of each
 * of its own buffers (authoritative for every importer), the importer side
 * of the buffers it imports, the sync_file bridge on both, poll readiness,
 * and implicit synchronisation of CPU access (SPEC.md 11A).
 *
 *   const sync = DmabufSync.load(driver, fenceHost);
 *   // exporter, own buffer:
 *   await sync.addFence(buf, renderFence, 'write');
 *   const file = await sync.exportSyncFile(buf, 'read');        // waits for writers
 *   // importer, an fd on the import:
 *   await fd.beginCpuAccess('from_device');                     // waits for the exporter's writers
 *   await sync.importSyncFile(fd, myReadDone, 'read');          // the exporter's writers will wait for it
 *
 * Every entry point takes either a buffer of this domain (local: the
 * reservation object is here) or an fd this domain opened on an import
 * (remote: one request to the exporter). The same calls work on both, as
 * the same ioctls work on every dma-buf fd in Linux.
 *
 * State: loaded (handlers registered, hooks installed) -> closed (handlers
 * removed, hooks uninstalled; stored fences stay with their buffers until
 * released). Fences never need cleaning up: each one signals (with an
 * error at worst: its owner's death, its timeline's close).
 */
import { ProtocolError } from '../../../protocol/errors.ts';
import type { DmaBuf } from '../../dmabuf/dma-buf.ts';
import { type DmaBufSyncAccess } from '../../fence/dma-buf-sync-file.ts';
import type { DmaFence } from '../../fence/dma-fence.ts';
import { DmaResvUsage, usageRw } from '../../fence/dma-resv.ts';
import { EINVAL, ErrnoError } from '../../fence/errno.ts';
import { getStub } from '../../fence/stub.ts';
import { POLLERR, POLLIN, POLLOUT, SyncFile, syncFileGetFence } from '../../fence/sync-file.ts';
import { unwrapFences } from '../../fence/unwrap.ts';
import { FenceHost } from '../../fence-remote/fence-host.ts';
import type { HyperDmabuf } from '../driver.ts';
import { ExporterCpuSync, ImporterCpuSync, type CpuSyncStats } from './cpu-sync.ts';
import { isImportedFd, ResvClient, type ResvClientStats } from './resv-client.ts';
import { ResvRegistry, type ResvRegistryStats } from './resv-registry.ts';
import { ResvServer, type ResvServerStats } from './resv-server.ts';
import type { AddResult, ResvFence } from './shared-resv.ts';
import { peerUsageToWire, syncAccessFlags, syncAccessWrites, usageOf, usageToWire, type UsageArg } from './usage.ts';
import type { ValueOf } from '../../../protocol/state-machine.ts';

/** Layer lifecycle. */
export const DmabufSyncState = {
  Loaded: 'loaded',
  Closed: 'closed',
} as const;
/** One of the DmabufSyncState states. */
export type DmabufSyncState = ValueOf<typeof DmabufSyncState>;

/** Options of the layer. */
export interface DmabufSyncOptions {
  /** Longest implicit wait of a beginCpuAccess that names none (default 10 s). */
  cpuAccessTimeoutMs?: number;
  /** Timeout of DMABUF_RESV_ADD / DMABUF_RESV_GET requests (default: the connection's). */
  requestTimeoutMs?: number;
}

/** Statistics of the layer. */
export interface DmabufSyncStats {
  state: DmabufSyncState;
  /** Reservation objects of own buffers. */
  resv: ResvRegistryStats;
  /** Importers' requests served. */
  server: ResvServerStats;
  /** Requests this domain made as importer. */
  client: ResvClientStats;
  /** Implicit waits of CPU access on own buffers and on fds. */
  cpu: { exporter: CpuSyncStats; importer: CpuSyncStats };
}

/** Fences on the shared buffers of one domain. */
export class DmabufSync {
  readonly driver: HyperDmabuf;
  readonly fences: FenceHost;
  readonly registry: ResvRegistry;
  readonly server: ResvServer;
  readonly client: ResvClient;
  readonly #exporterCpu: ExporterCpuSync;
  readonly #importerCpu: ImporterCpuSync;
  #state: DmabufSyncState = DmabufSyncState.Loaded;
  #unregister: () => void;

  private constructor(driver: HyperDmabuf, fences: FenceHost, options: DmabufSyncOptions) {
    const timeout = options.cpuAccessTimeoutMs ?? 10_000;
    this.driver = driver;
    this.fences = fences;
    this.#exporterCpu = new ExporterCpuSync(timeout);
    this.registry = new ResvRegistry(driver.domid, this.#exporterCpu);
    this.#exporterCpu.attach(this.registry);
    this.server = new ResvServer(driver, fences, this.registry);
    this.client = new ResvClient(driver.host.hv, fences, options.requestTimeoutMs);
    this.#importerCpu = new ImporterCpuSync(this.client, timeout);
    this.#unregister = this.server.register();
    driver.importer.fdCpuSync = this.#importerCpu;
  }

  /** Loads the layer over a domain's driver and fence layer: handlers registered, CPU-access hooks installed. */
  static load(driver: HyperDmabuf, fences: FenceHost, options: DmabufSyncOptions = {}): DmabufSync {
    if (fences.domid !== driver.domid) throw new ProtocolError('ERR_BAD_ARGUMENT', `the fence layer is dom${fences.domid}'s, the driver dom${driver.domid}'s`);
    return new DmabufSync(driver, fences, options);
  }

  get state(): DmabufSyncState {
    return this.#state;
  }

  /**
   * dma_resv_add_fence on the buffer's reservation object: a leaf fence
   * (never a container) with `usage`. An fd's add goes to the exporter
   * (kernel usage is refused there: it is the exporter's own).
   */
  async addFence(buf: DmaBuf, fence: DmaFence, usage: UsageArg): Promise<AddResult> {
    this.#checkLoaded();
    const u = usageOf(usage);
    if (isImportedFd(buf)) return this.client.add(buf, fence, peerUsageToWire(u));
    return this.registry.for(buf).add([fence], u, this.driver.domid);
  }

  /**
   * DMA_BUF_IOCTL_IMPORT_SYNC_FILE: every leaf of `file` added on its own,
   * as a read fence ('read': later implicit writes wait) or a write fence
   * ('write', 'rw': every later implicit access waits). Adds only; what is
   * stored is replaced only by the rule of dma_resv_add_fence.
   * @throws ErrnoError EINVAL for bad flags or if `file` is not a sync_file
   */
  async importSyncFile(buf: DmaBuf, file: unknown, access: DmaBufSyncAccess): Promise<AddResult> {
    this.#checkLoaded();
    const flags = syncAccessFlags(access, 'DMA_BUF_IOCTL_IMPORT_SYNC_FILE');
    const fence = syncFileGetFence(file);
    if (fence === null) throw new ErrnoError(EINVAL, 'DMA_BUF_IOCTL_IMPORT_SYNC_FILE: not a sync_file');
    const usage = syncAccessWrites(flags) ? DmaResvUsage.WRITE : DmaResvUsage.READ;
    if (isImportedFd(buf)) return this.client.add(buf, file as SyncFile, peerUsageToWire(usage));
    return this.registry.for(buf).add([...unwrapFences(fence)], usage, this.driver.domid);
  }

  /**
   * DMA_BUF_IOCTL_EXPORT_SYNC_FILE: a snapshot sync_file of what an access
   * must wait for: 'read' the writers (POLLIN), 'write' and 'rw' every user
   * (POLLOUT). The signalled stub when nothing is pending.
   * @throws ErrnoError EINVAL for bad flags
   */
  async exportSyncFile(buf: DmaBuf, access: DmaBufSyncAccess): Promise<SyncFile> {
    this.#checkLoaded();
    const flags = syncAccessFlags(access, 'DMA_BUF_IOCTL_EXPORT_SYNC_FILE');
    const pending = await this.pendingFences(buf, usageRw(syncAccessWrites(flags)));
    return SyncFile.create(pending.length === 0 ? getStub() : FenceHost.combine(pending.map((p) => p.fence)));
  }

  /** dma_resv_get_fences with usages: the unsignalled fences stored with `usage` or stronger, a snapshot. */
  async pendingFences(buf: DmaBuf, usage: UsageArg): Promise<ResvFence[]> {
    this.#checkLoaded();
    const u = usageOf(usage);
    if (isImportedFd(buf)) return (await this.client.get(buf, usageToWire(u))).filter((p) => !p.fence.isSignaled());
    return this.registry.get(buf)?.pending(u) ?? [];
  }

  /**
   * poll() readiness of the buffer: POLLIN when no writer (KERNEL/WRITE
   * fence) is pending, POLLOUT when no reader or writer is. Only requested
   * events are reported. With `timeoutMs` > 0 it waits, like poll(2),
   * until one requested event is ready or the time is up (0: ready now).
   */
  async poll(buf: DmaBuf, events: number, timeoutMs = 0): Promise<number> {
    this.#checkLoaded();
    if ((events & (POLLIN | POLLOUT)) === 0) return 0;
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      // One snapshot at the weakest level asked for answers both events.
      const level = (events & POLLOUT) !== 0 ? usageRw(true) : usageRw(false);
      let pending: ResvFence[];
      try {
        pending = await this.pendingFences(buf, level);
      } catch (e) {
        // An fd whose buffer's reservation object cannot be reached (the export is gone) is in error, as a dma-buf without one.
        if ((e as { code?: string }).code === 'ERR_UNKNOWN_BUFFER' || (e as { code?: string }).code === 'ERR_UNEXPORTED') return POLLERR;
        throw e;
      }
      let ready = 0;
      if ((events & POLLIN) !== 0 && !pending.some((p) => p.usage <= usageRw(false))) ready |= POLLIN;
      if ((events & POLLOUT) !== 0 && pending.length === 0) ready |= POLLOUT;
      const left = deadline - performance.now();
      if (ready !== 0 || left <= 0) return ready;
      // Wait for the first fence of the snapshot that matters, then look again.
      const relevant = (events & POLLIN) !== 0 && (events & POLLOUT) === 0 ? pending.filter((p) => p.usage <= usageRw(false)) : pending;
      await relevant[0]!.fence.wait(left);
    }
  }

  /**
   * Resolves once `count` implicit waits of one side (this domain's own
   * buffers, or its fds on imports) have begun: begin_cpu_access found a
   * fence pending. Tests wait for this instead of a delay.
   */
  untilCpuWaited(side: 'exporter' | 'importer', count: number): Promise<void> {
    return (side === 'exporter' ? this.#exporterCpu : this.#importerCpu).untilWaited(count);
  }

  /** Statistics. */
  stats(): DmabufSyncStats {
    return {
      state: this.#state,
      resv: this.registry.stats(),
      server: this.server.stats(),
      client: this.client.stats(),
      cpu: { exporter: this.#exporterCpu.stats, importer: this.#importerCpu.stats },
    };
  }

  /**
   * Unloads: handlers removed (importers' requests then get ERR_UNSUPPORTED_LAYER),
   * CPU-access hooks uninstalled (new fds get none). Idempotent.
   */
  close(): void {
    if (this.#state === DmabufSyncState.Closed) return;
    this.#state = DmabufSyncState.Closed;
    this.#unregister();
    if (this.driver.importer.fdCpuSync === this.#importerCpu) this.driver.importer.fdCpuSync = undefined;
    for (const entry of this.driver.importer.entries()) {
      for (const fd of entry.fds.values()) if (fd.cpuSync === this.#importerCpu) fd.cpuSync = undefined;
    }
    this.registry.detachAll();
  }

  #checkLoaded(): void {
    if (this.#state !== DmabufSyncState.Loaded) throw new ProtocolError('ERR_BAD_ARGUMENT', 'the dma-buf sync layer is closed');
  }
}
