/**
 * A guest kernel: one domain's view of its own memory and of the backend.
 *
 * boot() connects to the backend (HELLO with the domain's token), maps the
 * domain's RAM and grant table, and wires the parts together: page
 * allocator, grant table, foreign mapper, event channels. It answers ECHO
 * (the benchmark baseline) and follows peers' lifecycle: when a peer dies,
 * deferred grant releases are retried at once (the backend has just dropped
 * the dead peer's mappings) and its RAM file is no longer cached.
 *
 * Close cascade (shutdown): foreign mappings unmapped (views detached, then
 * handles released) -> event channels closed -> grant table retry timer
 * stopped -> grant table and RAM unmapped -> connection closed.
 */
import { EventEmitter } from 'node:events';
import { DOMAIN_DIED, DOMAIN_UP, ECHO } from '../../protocol/messages/session.ts';
import { GNTTAB_QUERY_SIZE, GNTTAB_SETUP_TABLE } from '../../protocol/messages/grant.ts';
import type { EventOf } from '../../protocol/message.ts';
import { HvClient } from '../transport/hv-client.ts';
import { nativeMem } from '../memory/native.ts';
import { GuestError } from './errors.ts';
import type { ValueOf } from '../../protocol/state-machine.ts';
import { EventChannels } from './event-channels.ts';
import { ForeignMapper, type ForeignMapperStats } from './foreign-mapper.ts';
import { GrantTableFile } from './grant-table-file.ts';
import { GuestGrantTable, type DeferredRetryOptions, type GrantTableStats } from './grant-table.ts';
import { GuestRam } from './guest-ram.ts';
import { PageAllocator } from './page-allocator.ts';

/** What a domain is given at launch. */
export interface GuestKernelBootOptions {
  /** Backend WebSocket URL. */
  url: string;
  domid: number;
  token: string;
  ramPath: string;
  grantTablePath: string;
  memPages: number;
  maxGrantFrames: number;
  name?: string;
  caps?: string[];
  requestTimeoutMs?: number;
  /** Highest protocol version offered in HELLO (default: the highest this implementation speaks). */
  maxVersion?: number;
  /** Deferred grant release timing. */
  retry?: DeferredRetryOptions;
}

/** Kernel lifecycle. */
export const GuestKernelState = {
  Running: 'running',
  ShuttingDown: 'shutting-down',
  Down: 'down',
} as const;
/** One of the GuestKernelState states. */
export type GuestKernelState = ValueOf<typeof GuestKernelState>;

/** A snapshot of the kernel's resources. */
export interface GuestKernelStats {
  domid: number;
  state: GuestKernelState;
  memPages: number;
  freePages: number;
  usedPages: number;
  grants: GrantTableStats;
  mapper: ForeignMapperStats;
  /** Views mapped through the native addon in this process (RAM and grant table included). */
  nativeLiveMappings: number;
  ports: number;
  /** Frames and bytes on the connection to the backend, both ways (proof that data did not travel in messages). */
  wire: WireCounters;
  livePeers: number[];
  deadPeers: number[];
}

/** Traffic on the backend connection. */
export interface WireCounters {
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Largest single frame either way. */
  largestFrame: number;
}

/** Sees every frame on the backend connection (tracing). */
export type WireObserver = (direction: 'in' | 'out', type: string, bytes: number) => void;

/** A booted guest kernel. Events: 'peerUp' (body), 'peerDied' (body), 'hvClosed' (code, reason). */
export class GuestKernel extends EventEmitter {
  readonly domid: number;
  readonly hv: HvClient;
  readonly ram: GuestRam;
  readonly allocator: PageAllocator;
  readonly grants: GuestGrantTable;
  readonly mapper: ForeignMapper;
  readonly evtchn: EventChannels;
  /** Peers seen alive (DOMAIN_UP) and not since dead. */
  readonly livePeers = new Set<number>();
  /** Peers that died while this kernel ran. */
  readonly deadPeers = new Set<number>();
  private readonly grantTable: GrantTableFile;
  private stateValue: GuestKernelState = GuestKernelState.Running;
  private shuttingDown: Promise<void> | undefined;
  private readonly wire: WireCounters = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0, largestFrame: 0 };
  private wireObserver: WireObserver | undefined;

  private constructor(hv: HvClient, ram: GuestRam, grantTable: GrantTableFile, grants: GuestGrantTable) {
    super();
    this.domid = hv.domid;
    this.hv = hv;
    this.ram = ram;
    this.grantTable = grantTable;
    this.grants = grants;
    this.allocator = new PageAllocator(ram.memPages, ram);
    this.mapper = new ForeignMapper(hv);
    this.evtchn = new EventChannels(hv);
    hv.conn.observe((direction, env, bytes) => {
      if (direction === 'in') { this.wire.framesIn++; this.wire.bytesIn += bytes; } else { this.wire.framesOut++; this.wire.bytesOut += bytes; }
      if (bytes > this.wire.largestFrame) this.wire.largestFrame = bytes;
      this.wireObserver?.(direction, env.type, bytes);
    });
    hv.handlePeerRequest(ECHO, (body) => ({ payload: body.payload }));
    hv.onEventOf(DOMAIN_UP, (body) => this.onPeerUp(body));
    hv.onEventOf(DOMAIN_DIED, (body) => this.onPeerDied(body));
    hv.on('close', (code: number, reason: string) => {
      if (this.stateValue === GuestKernelState.Running) this.emit('hvClosed', code, reason);
    });
  }

  /** Connects, maps RAM and grant table, and starts serving. */
  static async boot(options: GuestKernelBootOptions): Promise<GuestKernel> {
    const hv = await HvClient.connect({
      url: options.url, domid: options.domid, token: options.token, name: options.name ?? `dom${options.domid}`,
      ...(options.caps ? { caps: options.caps } : {}),
      ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
      ...(options.maxVersion !== undefined ? { maxVersion: options.maxVersion } : {}),
    });
    let ram: GuestRam | undefined;
    let table: GrantTableFile | undefined;
    try {
      const size = await hv.call(GNTTAB_QUERY_SIZE, {});
      if (size.maxFrames !== options.maxGrantFrames) {
        throw new GuestError('ERR_BAD_ARGUMENT', `launched with maxGrantFrames ${options.maxGrantFrames}, the backend says ${size.maxFrames}`);
      }
      ram = GuestRam.open(options.ramPath, options.memPages);
      table = GrantTableFile.open(options.grantTablePath);
      const grants = new GuestGrantTable({
        memory: table,
        hypercalls: { setupTable: (nrFrames) => hv.call(GNTTAB_SETUP_TABLE, { nrFrames }) },
        nrFrames: size.nrFrames,
        maxFrames: size.maxFrames,
        memPages: ram.memPages,
        ...(options.retry ? { retry: options.retry } : {}),
      });
      return new GuestKernel(hv, ram, table, grants);
    } catch (e) {
      table?.close();
      ram?.close();
      await hv.conn.destroy();
      throw e;
    }
  }

  get state(): GuestKernelState {
    return this.stateValue;
  }

  /** Installs (or removes) an observer of every frame on the backend connection. */
  observeWire(observer: WireObserver | undefined): void {
    this.wireObserver = observer;
  }

  /** A snapshot of resources, for stats commands and leak checks. */
  stats(): GuestKernelStats {
    return {
      domid: this.domid,
      state: this.stateValue,
      memPages: this.ram.memPages,
      freePages: this.allocator.freePages,
      usedPages: this.allocator.usedPages,
      grants: this.grants.stats(),
      mapper: this.mapper.stats(),
      nativeLiveMappings: nativeMem.liveMappings(),
      ports: this.evtchn.openPorts.length,
      wire: { ...this.wire },
      livePeers: [...this.livePeers],
      deadPeers: [...this.deadPeers],
    };
  }

  /** Unmaps everything and closes the connection (see the close cascade above). Idempotent. */
  shutdown(): Promise<void> {
    this.shuttingDown ??= (async () => {
      this.stateValue = GuestKernelState.ShuttingDown;
      try {
        await this.mapper.unmapAll();
        await this.evtchn.closeAll().catch(() => undefined);
      } finally {
        this.grants.close();
        this.grantTable.close();
        this.ram.close();
        await this.hv.close();
        this.stateValue = GuestKernelState.Down;
      }
    })();
    return this.shuttingDown;
  }

  private onPeerUp(body: EventOf<typeof DOMAIN_UP>): void {
    this.livePeers.add(body.domid);
    this.deadPeers.delete(body.domid);
    this.emit('peerUp', body);
  }

  private onPeerDied(body: EventOf<typeof DOMAIN_DIED>): void {
    this.livePeers.delete(body.domid);
    this.deadPeers.add(body.domid);
    this.mapper.onPeerDied(body.domid);
    // The backend released the dead peer's mappings before telling us: busy entries may be free now.
    this.grants.retryDeferred();
    this.emit('peerDied', body);
  }
}
