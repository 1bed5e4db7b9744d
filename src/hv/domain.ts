/**
 * A guest domain as the backend sees it: its files, its grant table (mapped
 * read-write by the backend), the active-entry shadow of that table, its
 * maptrack (what it maps of others), its event-channel ports, and its
 * lifecycle state (a declared machine: protocol/machines/domain.ts, drawn in
 * SPEC.md 9.1).
 */
import { closeSync } from 'node:fs';
import { ENTRIES_PER_FRAME, PAGE_SIZE } from '../../protocol/index.ts';
import { DomainMachine, DomainState } from '../../protocol/machines/domain.ts';
import { GrantTableView } from '../memory/grant-table-view.ts';
import { nativeMem } from '../memory/native.ts';
import { ActiveGrants } from './active-grants.ts';
import { EventChannels } from './event-channels.ts';
import { Maptrack } from './maptrack.ts';
import type { SessionLink } from './session-link.ts';

/** What DOMAIN_CREATE decided for a new domain. */
export interface DomainSpec {
  domid: number;
  name: string;
  token: string;
  memPages: number;
  maxGrantFrames: number;
  ramPath: string;
  grantTablePath: string;
  maxMaptrackEntries: number;
}

/** Frames a new grant table starts with (Linux's NR_GRANT_FRAMES), bounded by the domain's maximum. */
export const INITIAL_GRANT_FRAMES = 4;

/** One guest domain. */
export class Domain {
  readonly domid: number;
  readonly name: string;
  /** Secret presented in HELLO. */
  readonly token: string;
  /** Guest RAM size in pages: frames >= memPages are GNTST_bad_page. */
  readonly memPages: number;
  readonly maxGrantFrames: number;
  readonly ramPath: string;
  readonly grantTablePath: string;
  /** Lifecycle (SPEC.md 9.1); changes only through its transition table. */
  readonly lifecycle = DomainMachine.start();
  /** The live connection, while running. */
  session: SessionLink | undefined;
  /** Grant-table frames in use: refs >= nrFrames*512 are GNTST_bad_gntref. */
  nrFrames: number;
  /** The backend's view of the domain's grant table (the whole file, maxGrantFrames frames). */
  readonly table: GrantTableView;
  /** Word view of the same memory, for the map hot path (word 2r = flags|domid<<16, word 2r+1 = frame). */
  readonly words: Int32Array;
  /** Shadow of pinned entries of this domain's table. */
  readonly active: ActiveGrants;
  /** Mappings this domain holds of others' grants. */
  readonly maptrack: Maptrack;
  /** Event-channel ports. */
  readonly ports = new EventChannels();
  /** The death cascade, once started (domain-death.ts). */
  death: Promise<void> | undefined;
  /** Live maptrack entries, in any domain, that pin an entry of this domain's table. */
  foreignPins = 0;
  private readonly tableBuf: ArrayBuffer;
  private ramBuf: ArrayBuffer | undefined;
  private ramBytes: Uint8Array | undefined;

  /** Wraps a domain whose files exist; maps its grant table through `gnttabFd` (which the caller closes). */
  constructor(spec: DomainSpec, gnttabFd: number) {
    this.domid = spec.domid;
    this.name = spec.name;
    this.token = spec.token;
    this.memPages = spec.memPages;
    this.maxGrantFrames = spec.maxGrantFrames;
    this.ramPath = spec.ramPath;
    this.grantTablePath = spec.grantTablePath;
    this.nrFrames = Math.min(INITIAL_GRANT_FRAMES, spec.maxGrantFrames);
    this.tableBuf = nativeMem.mapRange(gnttabFd, 0, spec.maxGrantFrames, true);
    this.table = new GrantTableView(this.tableBuf);
    this.words = new Int32Array(this.tableBuf);
    this.active = new ActiveGrants(this.nrFrames * ENTRIES_PER_FRAME);
    this.maptrack = new Maptrack(spec.maxMaptrackEntries);
  }

  /** Valid grant references are [1, nrEntries). */
  get nrEntries(): number {
    return this.nrFrames * ENTRIES_PER_FRAME;
  }

  /** True while other domains may map its grants and talk to it (created or running). */
  get alive(): boolean {
    const state = this.lifecycle.state;
    return state === DomainState.Created || state === DomainState.Running;
  }

  /** Its lifecycle state (SPEC.md 9.1). */
  get state(): DomainState {
    return this.lifecycle.state;
  }

  /** Grows the grant table to `nrFrames` frames (never shrinks). */
  setFrames(nrFrames: number): void {
    if (nrFrames <= this.nrFrames) return;
    this.nrFrames = nrFrames;
    this.active.grow(nrFrames * ENTRIES_PER_FRAME);
  }

  /**
   * The backend's own read-write view of the domain's whole RAM, for
   * GNTTAB_COPY and the directory pages of GNTTAB_MAP_DIRECTORY. Mapped on
   * first use (`openRam` opens the file) and kept until the domain is
   * removed: copies are small and frequent, so one mapping beats a
   * pread/pwrite pair per op.
   */
  ram(openRam: () => number): Uint8Array {
    if (!this.ramBytes) {
      const fd = openRam();
      try {
        this.ramBuf = nativeMem.mapRange(fd, 0, this.memPages, true);
      } finally {
        closeSync(fd);
      }
      this.ramBytes = new Uint8Array(this.ramBuf);
    }
    return this.ramBytes;
  }

  /** Byte offset of a frame in the RAM view. */
  static frameOffset(frame: number): number {
    return frame * PAGE_SIZE;
  }

  /** Unmaps the backend's views of the domain's memory (at removal). Idempotent. */
  unmapAll(): void {
    if (this.ramBuf) nativeMem.unmap(this.ramBuf);
    this.ramBuf = undefined;
    this.ramBytes = undefined;
    if (this.tableBuf.byteLength > 0) nativeMem.unmap(this.tableBuf);
  }
}
