/**
 * The domain registry: every guest domain not yet removed, the live session
 * of each connected domain (the control domain, 0, included), and the
 * control domain's token.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { MAX_DOMID } from '../../protocol/index.ts';
import type { Domain } from './domain.ts';
import type { SessionLink } from './session-link.ts';

/** The control domain's id (the toolstack, Xen's dom0). It has no RAM and no grant table. */
export const CONTROL_DOMID = 0;

/** Makes a random domain token: 32 bytes from the CSPRNG, hex. */
export function newToken(): string {
  return randomBytes(32).toString('hex');
}

/** Compares a presented token with the expected one in constant time. */
export function tokenMatches(expected: string, presented: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(presented, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Domains and sessions by domid. */
export class DomainRegistry {
  /** Token of domain 0. */
  readonly controlToken = newToken();
  /** Token of read-only observers of domain 0 (SPEC.md 9.6): HV_STATS only. */
  readonly observerToken = newToken();
  private readonly domains = new Map<number, Domain>();
  private readonly sessions = new Map<number, SessionLink>();

  /** A guest domain by id (any state until removed). */
  get(domid: number): Domain | undefined {
    return this.domains.get(domid);
  }

  /** Every guest domain not yet removed, by ascending id. */
  all(): Domain[] {
    return [...this.domains.values()].sort((a, b) => a.domid - b.domid);
  }

  /** Number of guest domains not yet removed. */
  get size(): number {
    return this.domains.size;
  }

  /** The id to give a new domain: `wanted` if free, else the lowest free id; undefined if none (or wanted is taken). */
  allocDomid(wanted?: number): number | undefined {
    if (wanted !== undefined) return this.domains.has(wanted) ? undefined : wanted;
    for (let d = 1; d <= MAX_DOMID; d++) if (!this.domains.has(d)) return d;
    return undefined;
  }

  /** Adds a new domain. */
  add(domain: Domain): void {
    this.domains.set(domain.domid, domain);
  }

  /** Removes a domain for good (its id becomes free). */
  remove(domid: number): void {
    this.domains.delete(domid);
  }

  /** The live session of a domain (0 included). */
  sessionOf(domid: number): SessionLink | undefined {
    return this.sessions.get(domid);
  }

  /** Records the live session of a domain. */
  attach(domid: number, session: SessionLink): void {
    this.sessions.set(domid, session);
  }

  /** Forgets a domain's session, if it is still `session`. */
  detach(domid: number, session: SessionLink): void {
    if (this.sessions.get(domid) === session) this.sessions.delete(domid);
  }

  /** Every live session. */
  connected(): SessionLink[] {
    return [...this.sessions.values()];
  }
}
