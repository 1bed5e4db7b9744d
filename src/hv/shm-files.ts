/**
 * The backend's shared-memory files: one guest-RAM file and one grant-table
 * file per domain, all named `${shmDir}/${runTag}-d<domid>-<kind>` so that a
 * leak check (and Backend.close) can find every one of them by prefix.
 */
import { closeSync, ftruncateSync, openSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** The two files of a domain. */
export type ShmKind = 'ram' | 'gnttab';

/** Creates, lists and removes the files of one backend run. */
export class ShmFiles {
  /** Directory holding the files (a tmpfs). */
  readonly dir: string;
  /** Prefix of every file name. */
  readonly runTag: string;

  constructor(dir: string, runTag: string) {
    this.dir = dir;
    this.runTag = runTag;
  }

  /** Path of a domain's file. */
  path(domid: number, kind: ShmKind): string {
    return join(this.dir, `${this.runTag}-d${domid}-${kind}`);
  }

  /**
   * Creates a zero-filled (sparse) file of `bytes` bytes, mode 0600, and
   * returns an O_RDWR descriptor. Fails if the file exists (O_EXCL): a stale
   * file of an earlier domain with the same id must never be reused, since
   * it could hold that domain's data.
   */
  create(path: string, bytes: number): number {
    const fd = openSync(path, 'wx+', 0o600);
    try {
      ftruncateSync(fd, bytes);
    } catch (e) {
      closeSync(fd);
      this.remove(path);
      throw e;
    }
    return fd;
  }

  /** Opens an existing file read-write. */
  open(path: string): number {
    return openSync(path, 'r+');
  }

  /** Removes a file; a missing file is not an error. */
  remove(path: string): void {
    rmSync(path, { force: true });
  }

  /** Every file of this run that exists now (full paths, sorted). */
  list(): string[] {
    const prefix = `${this.runTag}-`;
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    return names.filter((n) => n.startsWith(prefix)).sort().map((n) => join(this.dir, n));
  }

  /** Removes every file of this run (shutdown). */
  removeAll(): void {
    for (const path of this.list()) this.remove(path);
  }
}
