/**
 * The multi-level gref directory of hyper_dmabuf (SPEC.md 10.3.1).
 *
 * One top page holds the refs of the second-level pages; each second-level
 * page holds up to 1024 data refs. Data page i is slot i % 1024 of
 * second-level page floor(i / 1024). With 4 KiB pages and 32-bit refs that
 * is at most 1024 x 1024 pages (4 GiB) behind the one top ref that travels
 * in EXPORT. Unused slots are 0.
 *
 * A reader needs two rounds: the top page, then every second-level page in
 * one batch.
 */
import { DIR_REFS_PER_PAGE } from '../../../protocol/messages/dmabuf.ts';
import { badDirectory, checkFresh, checkPage, checkPageCount, takeRefs, type DirectoryWalk } from './walk.ts';

/** Largest buffer the format describes: 1024 second-level pages of 1024 refs. */
export const MULTILEVEL_MAX_PAGES = DIR_REFS_PER_PAGE * DIR_REFS_PER_PAGE;

/** Second-level pages for a buffer of nPages pages. */
export function multilevelLeafCount(nPages: number): number {
  return Math.ceil(nPages / DIR_REFS_PER_PAGE);
}

/** Directory pages (top + second level) for nPages; ERR_BUFFER_TOO_LARGE past the limit. */
export function multilevelPageCount(nPages: number): number {
  checkPageCount(nPages, MULTILEVEL_MAX_PAGES, 'multilevel');
  return 1 + multilevelLeafCount(nPages);
}

/**
 * Encodes the directory. `dirRefs[0]` is the ref the top page is granted
 * as, `dirRefs[1 + k]` that of second-level page k. Returns the page
 * contents in the same order (pages[k] goes into the page granted as dirRefs[k]).
 */
export function encodeMultilevel(dataRefs: ArrayLike<number>, dirRefs: ArrayLike<number>): Uint32Array[] {
  const n = dataRefs.length;
  const nDir = multilevelPageCount(n);
  if (dirRefs.length !== nDir) throw new RangeError(`multilevel directory of ${n} pages needs ${nDir} directory refs, got ${dirRefs.length}`);
  const top = new Uint32Array(DIR_REFS_PER_PAGE);
  const pages = [top];
  for (let k = 0; k < nDir - 1; k++) {
    top[k] = dirRefs[1 + k]!;
    const leaf = new Uint32Array(DIR_REFS_PER_PAGE);
    const end = Math.min(n, (k + 1) * DIR_REFS_PER_PAGE);
    for (let i = k * DIR_REFS_PER_PAGE; i < end; i++) leaf[i - k * DIR_REFS_PER_PAGE] = dataRefs[i]!;
    pages.push(leaf);
  }
  return pages;
}

type Phase = 'top' | 'leaves' | 'done';

/** Incremental reader of a multi-level directory. */
export class MultilevelWalk implements DirectoryWalk {
  private phase: Phase = 'top';
  private wantedRefs: number[];
  private readonly nPages: number;
  private readonly refs: Uint32Array;
  private readonly seen = new Set<number>();
  private readonly read: number[] = [];

  /** Starts a walk from the top page's ref for a buffer of nPages pages. */
  constructor(topRef: number, nPages: number) {
    checkPageCount(nPages, MULTILEVEL_MAX_PAGES, 'multilevel');
    checkFresh(topRef, this.seen, 'multilevel top');
    this.nPages = nPages;
    this.refs = new Uint32Array(nPages);
    this.wantedRefs = [topRef];
  }

  get wanted(): readonly number[] {
    return this.wantedRefs;
  }

  get done(): boolean {
    return this.phase === 'done';
  }

  get dirRefs(): readonly number[] {
    return this.read;
  }

  supply(pages: readonly Uint32Array[]): void {
    if (pages.length !== this.wantedRefs.length) badDirectory(`multilevel: ${this.wantedRefs.length} pages wanted, ${pages.length} supplied`);
    this.read.push(...this.wantedRefs);
    if (this.phase === 'top') {
      const top = checkPage(pages[0], 'multilevel top');
      const nLeaves = multilevelLeafCount(this.nPages);
      const leafRefs = new Uint32Array(nLeaves);
      takeRefs(top, 0, nLeaves, leafRefs, 0, 'multilevel top');
      for (const ref of leafRefs) checkFresh(ref, this.seen, 'multilevel top');
      this.wantedRefs = Array.from(leafRefs);
      this.phase = 'leaves';
      return;
    }
    if (this.phase === 'leaves') {
      for (let k = 0; k < pages.length; k++) {
        const what = `multilevel second-level page ${k}`;
        const leaf = checkPage(pages[k], what);
        const count = Math.min(DIR_REFS_PER_PAGE, this.nPages - k * DIR_REFS_PER_PAGE);
        takeRefs(leaf, 0, count, this.refs, k * DIR_REFS_PER_PAGE, what);
      }
      this.wantedRefs = [];
      this.phase = 'done';
      return;
    }
    badDirectory('multilevel: the walk is already complete');
  }

  result(): Uint32Array {
    if (this.phase !== 'done') throw new Error('multilevel walk not complete');
    return this.refs;
  }
}
