/**
 * Open descriptors of peers' RAM files, one per file, shared by all the
 * mappings of that peer. A descriptor is closed when its domain died and no
 * mapping still uses it: a new domain may then reuse the domid, and with it
 * the path, so a dead domain's descriptor is never handed out again.
 */
import { closeSync, openSync } from 'node:fs';

/** One cached descriptor. */
export interface FdLease {
  readonly path: string;
  readonly dom: number;
  readonly fd: number;
}

interface Entry extends FdLease {
  users: number;
  /** The domain died: no new leases; close when the last user goes. */
  stale: boolean;
}

/** Descriptors of peers' RAM files, by path. */
export class ShmFdCache {
  private readonly live = new Map<string, Entry>();
  private readonly draining = new Set<Entry>();

  /** Descriptors open now (live and draining). */
  get openCount(): number {
    return this.live.size + this.draining.size;
  }

  /** A descriptor of `path` (RAM of `dom`), opened read-write on first use. Pair with release(). */
  acquire(path: string, dom: number): FdLease {
    let entry = this.live.get(path);
    if (entry && entry.dom !== dom) {
      // Same path, other domain: the old one is gone; never mix them up.
      this.retire(entry);
      entry = undefined;
    }
    if (!entry) {
      entry = { path, dom, fd: openSync(path, 'r+'), users: 0, stale: false };
      this.live.set(path, entry);
    }
    entry.users++;
    return entry;
  }

  /** Gives a lease back. */
  release(lease: FdLease): void {
    const entry = lease as Entry;
    entry.users--;
    if (entry.stale && entry.users <= 0) this.close(entry);
  }

  /** The domain died: its descriptors close once no mapping uses them. */
  invalidateDomain(dom: number): void {
    for (const entry of [...this.live.values()]) if (entry.dom === dom) this.retire(entry);
  }

  /** Closes every descriptor (after all mappings are gone). Idempotent. */
  closeAll(): void {
    for (const entry of [...this.live.values(), ...this.draining]) this.close(entry);
  }

  private retire(entry: Entry): void {
    this.live.delete(entry.path);
    entry.stale = true;
    if (entry.users <= 0) this.close(entry);
    else this.draining.add(entry);
  }

  private close(entry: Entry): void {
    // A newer entry for the same path (a reused domid) must stay.
    if (this.live.get(entry.path) === entry) this.live.delete(entry.path);
    this.draining.delete(entry);
    if (entry.fd >= 0) {
      closeSync(entry.fd);
      (entry as { fd: number }).fd = -1;
    }
  }
}
