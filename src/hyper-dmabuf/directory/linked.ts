/**
 * The linked gref directory of Xen's displif (SPEC.md 10.3.2), as in
 * `struct xendispl_page_directory { grant_ref_t gref_dir_next_page; grant_ref_t gref[]; }`.
 *
 * Each directory page starts with the ref of the next directory page (0 on
 * the last page) followed by up to 1023 data refs. Data page i is slot
 * 1 + i % 1023 of directory page floor(i / 1023). The format itself has no
 * size limit; the protocol's bound on nents (1024 x 1024 pages, 1026
 * directory pages) applies.
 *
 * A reader needs one round per directory page, since each page names the
 * next.
 */
import { DIR_REFS_PER_PAGE, DMABUF_MAX_PAGES, LINKED_REFS_PER_PAGE } from '../../../protocol/messages/dmabuf.ts';
import { badDirectory, checkFresh, checkPage, checkPageCount, takeRefs, type DirectoryWalk } from './walk.ts';

/** Largest buffer: the protocol's bound on nents. */
export const LINKED_MAX_PAGES = DMABUF_MAX_PAGES;
/** displif's XEN_GREF_LIST_END: the next-page link of the last page. */
export const GREF_LIST_END = 0;

/** Directory pages for nPages; ERR_BUFFER_TOO_LARGE past the limit. */
export function linkedPageCount(nPages: number): number {
  checkPageCount(nPages, LINKED_MAX_PAGES, 'linked');
  return Math.ceil(nPages / LINKED_REFS_PER_PAGE);
}

/**
 * Encodes the directory. `dirRefs[k]` is the ref directory page k is granted
 * as; page k links to dirRefs[k + 1], the last to 0. Returns the page
 * contents in the same order.
 */
export function encodeLinked(dataRefs: ArrayLike<number>, dirRefs: ArrayLike<number>): Uint32Array[] {
  const n = dataRefs.length;
  const nDir = linkedPageCount(n);
  if (dirRefs.length !== nDir) throw new RangeError(`linked directory of ${n} pages needs ${nDir} directory refs, got ${dirRefs.length}`);
  const pages: Uint32Array[] = [];
  for (let k = 0; k < nDir; k++) {
    const page = new Uint32Array(DIR_REFS_PER_PAGE);
    page[0] = k + 1 < nDir ? dirRefs[k + 1]! : GREF_LIST_END;
    const end = Math.min(n, (k + 1) * LINKED_REFS_PER_PAGE);
    for (let i = k * LINKED_REFS_PER_PAGE; i < end; i++) page[1 + i - k * LINKED_REFS_PER_PAGE] = dataRefs[i]!;
    pages.push(page);
  }
  return pages;
}

/** Incremental reader of a linked directory. */
export class LinkedWalk implements DirectoryWalk {
  private wantedRefs: number[];
  private readonly nPages: number;
  private readonly nDir: number;
  private readonly refs: Uint32Array;
  private readonly seen = new Set<number>();
  private readonly read: number[] = [];
  private pageIndex = 0;

  /** Starts a walk from the first page's ref for a buffer of nPages pages. */
  constructor(firstRef: number, nPages: number) {
    this.nDir = linkedPageCount(nPages);
    checkFresh(firstRef, this.seen, 'linked page 0');
    this.nPages = nPages;
    this.refs = new Uint32Array(nPages);
    this.wantedRefs = [firstRef];
  }

  get wanted(): readonly number[] {
    return this.wantedRefs;
  }

  get done(): boolean {
    return this.pageIndex === this.nDir;
  }

  get dirRefs(): readonly number[] {
    return this.read;
  }

  supply(pages: readonly Uint32Array[]): void {
    if (this.done) badDirectory('linked: the walk is already complete');
    if (pages.length !== 1) badDirectory(`linked: one page wanted, ${pages.length} supplied`);
    const k = this.pageIndex;
    const what = `linked page ${k}`;
    const page = checkPage(pages[0], what);
    const count = Math.min(LINKED_REFS_PER_PAGE, this.nPages - k * LINKED_REFS_PER_PAGE);
    const last = k + 1 === this.nDir;
    const next = page[0]!;
    // The page count follows from nents, so the link must agree with it exactly.
    if (last && next !== GREF_LIST_END) badDirectory(`${what}: last page links to ${next}; the list must end (0) after ${this.nDir} pages`);
    if (!last && next === GREF_LIST_END) badDirectory(`${what}: the list ends after ${k + 1} pages; ${this.nDir} are needed for ${this.nPages} pages`);
    takeRefs(page, 1, count, this.refs, k * LINKED_REFS_PER_PAGE, what);
    this.read.push(this.wantedRefs[0]!);
    this.pageIndex++;
    if (last) {
      this.wantedRefs = [];
    } else {
      checkFresh(next, this.seen, what);
      this.wantedRefs = [next];
    }
  }

  result(): Uint32Array {
    if (!this.done) throw new Error('linked walk not complete');
    return this.refs;
  }
}
