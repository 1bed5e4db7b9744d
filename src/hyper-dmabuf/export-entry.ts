/**
 * One export: a buffer shared with one importer domain under one id, and
 * its two state machines, declared as transition tables in
 * protocol/machines/export.ts and drawn in SPEC.md 11.1 (its life) and
 * 11.8.4 (its moves, orthogonal: a buffer can move in exported,
 * unexport-scheduled or unexported-waiting-release, since the importer may
 * still map it in all three).
 */
import type { AccessMode } from '../../protocol/messages/dmabuf.ts';
import { ExportMachine, ExportMoveMachine, ExportState, type ExportMoveState } from '../../protocol/machines/export.ts';
import type { Attachment, DmaBuf } from '../dmabuf/dma-buf.ts';
import type { SgTable } from '../dmabuf/sg-table.ts';
import type { GrantedDirectory } from './directory-writer.ts';
import type { Hid } from './hid.ts';
import { Serial } from './serial.ts';
import type { ShadowFd } from './shadow.ts';

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
  /** Move state (SPEC.md 11.8.4); changes only through its transition table. */
  readonly moves = ExportMoveMachine.start();
  /** The next location, between prepareMove and moveNotify. */
  prepared: PreparedLocation | undefined;
  /** Who may unexport it (the original's filp). */
  readonly owner: string;
  priv: Uint8Array;
  /** State (SPEC.md 11.1); changes only through its transition table. */
  readonly lifecycle = ExportMachine.start();
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

  /** The export's state (SPEC.md 11.1). */
  get state(): ExportState {
    return this.lifecycle.state;
  }

  /** The export's move state (SPEC.md 11.8.4). */
  get moveState(): ExportMoveState {
    return this.moves.state;
  }

  /** True while EXPORT_FD is accepted. */
  get importable(): boolean {
    return this.lifecycle.is(ExportState.Exported, ExportState.UnexportScheduled);
  }

  /** Cancels the delay of a scheduled unexport, if one is pending (its waiters are settled by the caller). */
  cancelUnexportDelay(): void {
    if (this.unexportTimer) clearTimeout(this.unexportTimer);
    this.unexportTimer = undefined;
  }

  /** Settles every pending unexport() call. */
  settleUnexport(outcome: UnexportOutcome): void {
    for (const w of this.unexportWaiters.splice(0)) w(outcome);
  }

  /** Marks the export freed: every grant ended. */
  markFreed(): void {
    this.lifecycle.apply('grants-ended');
    this.resolveFreed();
  }
}
