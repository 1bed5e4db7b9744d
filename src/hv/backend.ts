/**
 * The backend ("hv"): the hypervisor stand-in. One process, one WebSocket
 * server on loopback; it owns the domain registry, validates grant-table
 * use and keeps each domain's maptrack, runs event channels, and routes
 * messages between domains with the true source stamped on each.
 *
 *   const hv = await Backend.start();
 *   const d1 = await hv.createDomain({ name: 'exporter', memPages: 4096 });
 *   // ...a process connects to hv.url as d1.domid with d1.token...
 *   await hv.close();
 */
import { ProtocolError } from '../../protocol/index.ts';
import type { HvContext } from './context.ts';
import { killDomain } from './domain-death.ts';
import { createDomain, reapIfUnused, type DomainCreated } from './domain-lifecycle.ts';
import { DomainRegistry } from './domain-registry.ts';
import { resolveOptions, type BackendOptions, type ResolvedOptions } from './options.ts';
import { Router } from './router.ts';
import { newGrantStats } from './grant-stats.ts';
import { listen, stopListening, type Listener } from './server.ts';
import { Session } from './session.ts';
import { ShmFiles } from './shm-files.ts';
import { collectStats, type HvStatsBody } from './stats.ts';
import { TrafficCounters } from './traffic.ts';

export type { BackendOptions } from './options.ts';
export type { DomainCreated } from './domain-lifecycle.ts';
export type { HvStatsBody } from './stats.ts';

/** Backend states: running until close() begins, then closing, then closed. */
export const BackendState = { Running: 'running', Closing: 'closing', Closed: 'closed' } as const;
/** A backend state. */
export type BackendState = (typeof BackendState)[keyof typeof BackendState];

/** A running backend. */
export class Backend {
  /** ws://host:port to connect to. */
  readonly url: string;
  /** The control domain's (domain 0's) token for HELLO. */
  readonly controlToken: string;
  /** The token of a read-only observer's HELLO as domain 0 (SPEC.md 9.6). */
  readonly observerToken: string;
  /** Prefix of every shm file: `${shmDir}/${runTag}-d<domid>-ram` and `-gnttab`. */
  readonly runTag: string;
  /** Resolved options. */
  readonly options: ResolvedOptions;
  state: BackendState = BackendState.Running;
  private readonly ctx: HvContext;
  private readonly listener: Listener;
  private readonly sessions: Set<Session>;
  private closing: Promise<void> | undefined;

  private constructor(ctx: HvContext, listener: Listener, sessions: Set<Session>) {
    this.ctx = ctx;
    this.listener = listener;
    this.url = listener.url;
    this.sessions = sessions;
    this.options = ctx.opts;
    this.controlToken = ctx.registry.controlToken;
    this.observerToken = ctx.registry.observerToken;
    this.runTag = ctx.opts.runTag;
  }

  /** Starts a backend listening on loopback; resolves when it accepts connections. */
  static async start(opts?: BackendOptions): Promise<Backend> {
    const resolved = resolveOptions(opts);
    const registry = new DomainRegistry();
    const ctx: HvContext = {
      opts: resolved,
      registry,
      files: new ShmFiles(resolved.shmDir, resolved.runTag),
      router: new Router(registry, resolved.backpressureBytes, resolved.log),
      log: resolved.log,
      deaths: new Set(),
      counters: { internalErrors: 0 },
      grantStats: newGrantStats(),
      traffic: new TrafficCounters(),
      closing: false,
    };
    const sessions = new Set<Session>();
    const listener = await listen(
      {
        host: resolved.host, port: resolved.port, maxPayload: resolved.maxFrameBytes,
        helloDeadlineMs: resolved.helloTimeoutMs, maxUnauthenticated: resolved.maxUnauthenticated,
      },
      (ws, admission) => {
        const session = new Session(ctx, ws, admission);
        sessions.add(session);
        void session.conn.closed.then(() => sessions.delete(session));
      },
      resolved.log,
    );
    resolved.log(`listening on ${listener.url}, run tag ${resolved.runTag}`);
    return new Backend(ctx, listener, sessions);
  }

  /** Creates a domain, exactly as DOMAIN_CREATE over the wire. Rejects with a ProtocolError. */
  async createDomain(req: { name: string; memPages: number; maxGrantFrames?: number; domid?: number }): Promise<DomainCreated> {
    return createDomain(this.ctx, req);
  }

  /** Destroys a domain, exactly as DOMAIN_DESTROY over the wire; resolves when its death cascade is done. */
  async destroyDomain(domid: number): Promise<void> {
    const domain = this.ctx.registry.get(domid);
    if (!domain || !domain.alive) throw new ProtocolError('ERR_NO_SUCH_DOMAIN', `domain ${domid} does not exist or is already dying`);
    await killDomain(this.ctx, domain, 'destroyed');
  }

  /** A snapshot, exactly as HV_STATS over the wire. */
  stats(): HvStatsBody {
    return collectStats(this.ctx);
  }

  /**
   * Shuts down: stops accepting, closes every connection (1001, forced
   * after 2 s), lets every death cascade finish without notifications,
   * removes every domain and every shm file of this run. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.state = BackendState.Closing;
    this.ctx.closing = true;
    const stopped = stopListening(this.listener);
    await Promise.all([...this.sessions].map((s) => s.conn.close(1001, 'backend shutting down')));
    for (const ws of this.listener.wss.clients) ws.terminate();
    for (const domain of this.ctx.registry.all()) if (domain.alive) void killDomain(this.ctx, domain, 'destroyed');
    while (this.ctx.deaths.size > 0) await Promise.all([...this.ctx.deaths]);
    // Every mapper is dead now, so every dead domain is unpinned; reap them all.
    for (const domain of this.ctx.registry.all()) {
      if (!reapIfUnused(this.ctx, domain)) {
        this.ctx.log(`d${domain.domid} still pinned at shutdown (${domain.foreignPins}); removing anyway`);
        this.ctx.registry.remove(domain.domid);
        domain.unmapAll();
      }
    }
    this.ctx.files.removeAll();
    await stopped;
    this.state = BackendState.Closed;
    this.ctx.log('closed');
  }
}
