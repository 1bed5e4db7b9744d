/** What every part of the backend shares: options, registry, files, router, log. */
import type { DomainRegistry } from './domain-registry.ts';
import type { GrantStats } from './grant-stats.ts';
import type { ResolvedOptions } from './options.ts';
import type { Router } from './router.ts';
import type { ShmFiles } from './shm-files.ts';
import type { TrafficCounters } from './traffic.ts';

/** The backend's shared state, passed to every handler. */
export interface HvContext {
  readonly opts: ResolvedOptions;
  readonly registry: DomainRegistry;
  readonly files: ShmFiles;
  readonly router: Router;
  /** What the backend moved, per domain (HV_STATS `traffic`). */
  readonly traffic: TrafficCounters;
  readonly log: (line: string) => void;
  /** Death cascades in progress (Backend.close awaits them). */
  readonly deaths: Set<Promise<void>>;
  /** Counters reported by HV_STATS. */
  readonly counters: { internalErrors: number };
  /** The backend's own cost counters of grant batches (HV_GRANT_STATS). */
  readonly grantStats: GrantStats;
  /** Set once Backend.close has begun: no new domains, no notifications. */
  closing: boolean;
}
