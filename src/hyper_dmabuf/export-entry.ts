/**
 * One export: a buffer shared with one importer domain under one id, and
 * its state machine (SPEC.md 11.1):
 *
 *   exported --unexport(delay)--> unexport-scheduled --delay--> unexported-waiting-release
 *      ^                              |                               |
 *      +------ re-export -------------+                    last fd released
 *                                                                     v
 *                                                revoking --every grant ended--> freed
 *
 * Recovery: the importer dies -> every fd counts as released and the export
 * goes to unexported-waiting-release (then revoking, freed) from any live state.
 *
 * Moves (SPEC.md 11.8) are a second, orthogonal state: a buffer can move in
 * exported, unexport-scheduled or unexported-waiting-release (the importer
 * may still map it in all three):
 *
 *   stable --prepare (new grants, new directory)--> moving
 *   moving --MOVE_NOTIFY answered (or importer gone), old grants ended--> stable
 */
import type { AccessMode } from '../../protocol/messages/dmabuf.ts';
import type { Attachment, DmaBuf } from '../dmabuf/dma-buf.ts';
import type { SgTable } from '../dmabuf/sg-table.ts';
import type { GrantedDirectory } from './directory-writer.ts';
import type { Hid } from './hid.ts';
import { Serial } from './serial.ts';
import type { ShadowFd } from './shadow.ts';

/** Exporter-side states of a buffer. */
export enum ExportState {
  /** Importable: EXPORT_FD is accepted. */
  Exported = 'exported',
  /** unexport() called with a delay that has not run out; still importable; a re-export cancels it. */
  UnexportScheduled = 'unexport-scheduled',
  /** NOTIFY_UNEXPORT sent; no new fd; waiting for the importer's open fds to be released. */
  WaitingRelease = 'unexported-waiting-release',
  /** No fd left; ending access to every grant (deferred while any page is still mapped). */
  Revoking = 'revoking',
  /** Grants ended, directory freed, buffer reference dropped, id reusable. */
  Freed = 'freed',
}

/** Move state of an export, orthogonal to ExportState. */
export enum ExportMoveState {
  /** The importer knows the current location. */
  Stable = 'stable',
  /** New pages granted and described; the importer is being told (MOVE_NOTIFY) or the old grants are ending. */
  Moving = 'moving',
}

/** A new location granted to the importer, ready to be announced. */
export interface PreparedLocation {
  readonly dataRefs: Uint32Array;
  readonly directory: GrantedDirectory;
}

/** What an unexport() call learns. */
export type UnexportOutcome = 'unexported' | 'cancelled';

/** The exporter's record of one export. */
export class ExportedBuffer {
  readonly hid: Hid;
  /** hidKey(hid). */
  readonly key: string;
  /** The importer domain. */
  readonly target: number;
  /** The exported buffer (one reference held until freed). */
  readonly buf: DmaBuf;
  /** The driver's attachment (dynamic: it follows moves) and mapping, held for the export's life. */
  readonly attachment: Attachment;
  /** The driver's mapping of the current location (replaced by a move). */
  sgt: SgTable;
  readonly access: AccessMode;
  /** Data refs of the current location, in buffer order (replaced by a move). */
  dataRefs: Uint32Array;
  /** Directory of the current location (replaced by a move). */
  directory: GrantedDirectory;
  /** Moves announced to the importer so far (MOVE_NOTIFY generation). */
  generation = 0;
  moveState = ExportMoveState.Stable;
  /** The next location, between prepareMove and moveNotify. */
  prepared: PreparedLocation | undefined;
  /** Who may unexport it (the original's filp). */
  readonly owner: string;
  priv: Uint8Array;
  state = ExportState.Exported;
  /** Open importer fds by fdId, each with its shadow state. */
  readonly fds = new Map<number, ShadowFd>();
  /** Serialises work on this export (remote-sync ops arrive fire-and-forget). */
  readonly serial = new Serial();
  unexportTimer: NodeJS.Timeout | undefined;
  /** Settles pending unexport() calls. */
  unexportWaiters: Array<(outcome: UnexportOutcome) => void> = [];
  private resolveFreed!: () => void;
  /** Resolves when the export reaches Freed. */
  readonly freed: Promise<void>;

  constructor(init: {
    hid: Hid; key: string; target: number; buf: DmaBuf; attachment: Attachment; sgt: SgTable;
    access: AccessMode; dataRefs: Uint32Array; directory: GrantedDirectory; owner: string; priv: Uint8Array;
  }) {
    this.hid = init.hid;
    this.key = init.key;
    this.target = init.target;
    this.buf = init.buf;
    this.attachment = init.attachment;
    this.sgt = init.sgt;
    this.access = init.access;
    this.dataRefs = init.dataRefs;
    this.directory = init.directory;
    this.owner = init.owner;
    this.priv = init.priv;
    this.freed = new Promise((resolve) => { this.resolveFreed = resolve; });
  }

  /** True while EXPORT_FD is accepted. */
  get importable(): boolean {
    return this.state === ExportState.Exported || this.state === ExportState.UnexportScheduled;
  }

  /** Settles every pending unexport() call. */
  settleUnexport(outcome: UnexportOutcome): void {
    for (const w of this.unexportWaiters.splice(0)) w(outcome);
  }

  /** Marks the export freed. */
  markFreed(): void {
    this.state = ExportState.Freed;
    this.resolveFreed();
  }
}
