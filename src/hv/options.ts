/**
 * Backend options and their defaults.
 *
 * Every limit the backend enforces is here, so that a test (or a scenario)
 * can shrink one to reach its edge quickly, and SPEC.md can name the
 * defaults.
 */
import { randomBytes } from 'node:crypto';
import { DEFAULT_MAX_GRANT_FRAMES, MAX_FRAME_BYTES, MAX_VERSION, MIN_VERSION } from '../../protocol/index.ts';

/** Options of Backend.start (all optional). */
export interface BackendOptions {
  /** Interface to listen on (default 127.0.0.1: the protocol is loopback only). */
  host?: string;
  /** TCP port (default 0: an ephemeral port, read back from Backend.url). */
  port?: number;
  /** Directory of the shared-memory files (default /dev/shm, a tmpfs). */
  shmDir?: string;
  /** Prefix of every shared-memory file of this backend (default `hdmabuf-${pid}-${random}`). */
  runTag?: string;
  /** Largest frame accepted; a larger one closes the connection with 1009 (default 16 MiB). */
  maxFrameBytes?: number;
  /** Grant-table limit of a domain created without maxGrantFrames (default 64, Xen's). */
  defaultMaxGrantFrames?: number;
  /** Most guest domains alive at once, dead ones awaiting file removal included (default 256). */
  maxDomains?: number;
  /** Maptrack entries (live mappings) per mapping domain (default 262,144: Xen's 1024 maptrack frames). */
  maxMaptrackEntries?: number;
  /**
   * Send budget of a connection (SPEC 3.7): bytes queued for it and not yet sent above which the backend
   * stops reading its socket, refuses to route to it (ERR_BACKPRESSURE) and coalesces its event-channel
   * events (default 16 MiB).
   */
  backpressureBytes?: number;
  /** Requests of one connection being handled or routed and not yet answered, above which a request gets ERR_LIMIT (default 1024). */
  maxRequestsInFlight?: number;
  /** Time from the TCP accept to a completed HELLO (WebSocket handshake included) before the connection is closed (default 10 s). */
  helloTimeoutMs?: number;
  /** Connections at once that have not completed HELLO; more are dropped at accept (default 64). */
  maxUnauthenticated?: number;
  /** Lowest protocol version HELLO accepts (default MIN_VERSION, 1). */
  minVersion?: number;
  /** Highest protocol version HELLO accepts (default MAX_VERSION; 1 makes a v1-only backend, SPEC.md 15). */
  maxVersion?: number;
  /** Diagnostic log sink (default: none). */
  log?: (line: string) => void;
}

/** Options with every default filled in. */
export interface ResolvedOptions {
  readonly host: string;
  readonly port: number;
  readonly shmDir: string;
  readonly runTag: string;
  readonly maxFrameBytes: number;
  readonly defaultMaxGrantFrames: number;
  readonly maxDomains: number;
  readonly maxMaptrackEntries: number;
  readonly backpressureBytes: number;
  readonly maxRequestsInFlight: number;
  readonly helloTimeoutMs: number;
  readonly maxUnauthenticated: number;
  readonly minVersion: number;
  readonly maxVersion: number;
  readonly log: (line: string) => void;
}

/** Highest maptrack size: handles keep 20 bits for the slot index (see maptrack.ts). */
export const MAPTRACK_INDEX_LIMIT = (1 << 20) - 1;

/** Default per-domain maptrack size: Xen's opt_max_maptrack_frames (1024) × 256 entries per frame. */
export const DEFAULT_MAX_MAPTRACK_ENTRIES = 1024 * 256;

/** Default send budget of a connection (SPEC 3.7). */
export const DEFAULT_SEND_BUDGET_BYTES = 16 * 1024 * 1024;
/** Default requests in flight per connection (SPEC 3.7). */
export const DEFAULT_MAX_REQUESTS_IN_FLIGHT = 1024;
/** Default number of connections that have not completed HELLO (SPEC 3.7). */
export const DEFAULT_MAX_UNAUTHENTICATED = 64;

/** Run tags become file names: keep them to a safe alphabet. */
const RUN_TAG = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** Fills in defaults and checks the values; throws RangeError on a bad option. */
export function resolveOptions(opts: BackendOptions = {}): ResolvedOptions {
  const runTag = opts.runTag ?? `hdmabuf-${process.pid}-${randomBytes(4).toString('hex')}`;
  if (!RUN_TAG.test(runTag)) throw new RangeError(`runTag ${JSON.stringify(runTag)} must match ${RUN_TAG}`);
  const maxMaptrackEntries = opts.maxMaptrackEntries ?? DEFAULT_MAX_MAPTRACK_ENTRIES;
  if (!Number.isInteger(maxMaptrackEntries) || maxMaptrackEntries < 1 || maxMaptrackEntries > MAPTRACK_INDEX_LIMIT) {
    throw new RangeError(`maxMaptrackEntries must be an integer in [1, ${MAPTRACK_INDEX_LIMIT}]`);
  }
  const defaultMaxGrantFrames = opts.defaultMaxGrantFrames ?? DEFAULT_MAX_GRANT_FRAMES;
  if (!Number.isInteger(defaultMaxGrantFrames) || defaultMaxGrantFrames < 1 || defaultMaxGrantFrames > 0xffff) {
    throw new RangeError('defaultMaxGrantFrames must be an integer in [1, 65535]');
  }
  const minVersion = opts.minVersion ?? MIN_VERSION;
  const maxVersion = opts.maxVersion ?? MAX_VERSION;
  if (!Number.isInteger(minVersion) || !Number.isInteger(maxVersion) || minVersion < MIN_VERSION || maxVersion > MAX_VERSION || minVersion > maxVersion) {
    throw new RangeError(`minVersion..maxVersion must be a range within [${MIN_VERSION}, ${MAX_VERSION}]`);
  }
  return {
    host: opts.host ?? '127.0.0.1',
    port: opts.port ?? 0,
    shmDir: opts.shmDir ?? '/dev/shm',
    runTag,
    maxFrameBytes: opts.maxFrameBytes ?? MAX_FRAME_BYTES,
    defaultMaxGrantFrames,
    maxDomains: opts.maxDomains ?? 256,
    maxMaptrackEntries,
    backpressureBytes: opts.backpressureBytes ?? DEFAULT_SEND_BUDGET_BYTES,
    maxRequestsInFlight: opts.maxRequestsInFlight ?? DEFAULT_MAX_REQUESTS_IN_FLIGHT,
    helloTimeoutMs: opts.helloTimeoutMs ?? 10_000,
    maxUnauthenticated: opts.maxUnauthenticated ?? DEFAULT_MAX_UNAUTHENTICATED,
    minVersion,
    maxVersion,
    log: opts.log ?? (() => undefined),
  };
}
