/**
 * Imported sync_files waiting for the application, filed under the
 * exporter's domain and the cookie it chose (the way a received fd waits in
 * a socket until the receiver takes it).
 */
import type { SyncFile } from '../fence/sync-file.ts';
import { FenceRemoteError } from '../guest/errors.ts';

interface Waiter {
  src: number;
  resolve: (file: SyncFile) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

function key(src: number, cookie: number): string {
  return `${src}:${cookie}`;
}

/** Imports not yet taken, and applications waiting for imports. */
export class ImportInbox {
  readonly #files = new Map<string, SyncFile>();
  readonly #perSrc = new Map<number, number>();
  readonly #waiters = new Map<string, Waiter>();
  readonly #maxPerSrc: number;
  // Exporters that died: nothing more can arrive from them, so takers fail at once.
  readonly #dead = new Set<number>();
  #delivered = 0;

  /** @param maxPerSrc most imports of one exporter waiting to be taken */
  constructor(maxPerSrc = 4096) {
    this.#maxPerSrc = maxPerSrc;
  }

  /** Imports waiting to be taken. */
  get size(): number {
    return this.#files.size;
  }

  /** Imports delivered so far (taken at once or later). */
  get delivered(): number {
    return this.#delivered;
  }

  /** Applications waiting in take(). */
  get waiting(): number {
    return this.#waiters.size;
  }

  /**
   * Checks that an import (src, cookie) can be filed: the cookie is not
   * waiting already and the exporter is under its limit.
   * @throws FenceRemoteError ERR_BAD_ARGUMENT (duplicate cookie), ERR_LIMIT
   */
  check(src: number, cookie: number): void {
    const k = key(src, cookie);
    if (this.#files.has(k)) throw new FenceRemoteError('ERR_BAD_ARGUMENT', `cookie ${cookie} of d${src} is already waiting to be taken`);
    if (!this.#waiters.has(k) && (this.#perSrc.get(src) ?? 0) >= this.#maxPerSrc) {
      throw new FenceRemoteError('ERR_LIMIT', `d${src} already has ${this.#maxPerSrc} imports waiting to be taken`);
    }
  }

  /** Files an import (after check), or hands it to the application already waiting for it. */
  put(src: number, cookie: number, file: SyncFile): void {
    const k = key(src, cookie);
    this.#delivered++;
    const w = this.#waiters.get(k);
    if (w) {
      this.#waiters.delete(k);
      if (w.timer) clearTimeout(w.timer);
      w.resolve(file);
      return;
    }
    this.#files.set(k, file);
    this.#perSrc.set(src, (this.#perSrc.get(src) ?? 0) + 1);
  }

  /**
   * Takes the import (src, cookie), waiting up to `timeoutMs` for it to
   * arrive (Infinity: no limit).
   * @throws FenceRemoteError ERR_TIMEOUT, ERR_BAD_ARGUMENT if someone already waits for it
   */
  take(src: number, cookie: number, timeoutMs = Number.POSITIVE_INFINITY): Promise<SyncFile> {
    const k = key(src, cookie);
    const file = this.#files.get(k);
    if (file) {
      this.#files.delete(k);
      this.#perSrc.set(src, (this.#perSrc.get(src) ?? 1) - 1);
      return Promise.resolve(file);
    }
    if (this.#waiters.has(k)) return Promise.reject(new FenceRemoteError('ERR_BAD_ARGUMENT', `someone already waits for cookie ${cookie} of d${src}`));
    if (this.#dead.has(src)) return Promise.reject(new FenceRemoteError('ERR_PEER_GONE', `d${src} died; no import with cookie ${cookie} will come`));
    return new Promise<SyncFile>((resolve, reject) => {
      const w: Waiter = { src, resolve, reject, timer: undefined };
      if (Number.isFinite(timeoutMs)) {
        w.timer = setTimeout(() => {
          this.#waiters.delete(k);
          reject(new FenceRemoteError('ERR_TIMEOUT', `no import with cookie ${cookie} from d${src} within ${timeoutMs} ms`));
        }, Math.max(0, timeoutMs));
      }
      this.#waiters.set(k, w);
    });
  }

  /**
   * The exporter died: takers waiting for it fail with ERR_PEER_GONE, and so
   * do later takes of imports that never arrived. Imports already filed can
   * still be taken (their fences have signalled with -EPIPE or earlier).
   */
  peerDied(src: number): void {
    this.#dead.add(src);
    for (const [k, w] of [...this.#waiters]) {
      if (w.src !== src) continue;
      this.#waiters.delete(k);
      if (w.timer) clearTimeout(w.timer);
      w.reject(new FenceRemoteError('ERR_PEER_GONE', `d${src} died before exporting ${k.split(':')[1]}`));
    }
  }

  /** A domain (possibly a reused id) came up: takes for it wait again. */
  peerUp(src: number): void {
    this.#dead.delete(src);
  }

  /** Drops everything and fails every waiter (shutdown). */
  close(): void {
    this.#files.clear();
    this.#perSrc.clear();
    for (const w of this.#waiters.values()) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(new FenceRemoteError('ERR_STATE', 'the fence host is shut down'));
    }
    this.#waiters.clear();
  }
}
