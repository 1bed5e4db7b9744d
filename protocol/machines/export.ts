/** The exporter's machines of one export (SPEC.md 11.1 and 11.8.4). */
import { defineMachine, type ValueOf } from '../state-machine.ts';

/** Exporter-side states of an export. */
export const ExportState = {
  /** Importable: EXPORT_FD is accepted. */
  Exported: 'exported',
  /** unexport() called with a delay that has not run out; still importable; a re-export cancels it. */
  UnexportScheduled: 'unexport-scheduled',
  /** NOTIFY_UNEXPORT sent; no new fd; waiting for the importer's open fds to be released. */
  WaitingRelease: 'unexported-waiting-release',
  /** No fd left; ending access to every grant (deferred while any page is still mapped). */
  Revoking: 'revoking',
  /** Grants ended, directory freed, buffer reference dropped, id reusable. */
  Freed: 'freed',
} as const;
/** Exporter-side states of an export. */
export type ExportState = ValueOf<typeof ExportState>;

/** Events of an export. */
export type ExportEvent = 'unexport' | 'reexport' | 'unexport-due' | 'export-failed' | 'importer-died' | 'last-fd-released' | 'grants-ended';

const { Exported, UnexportScheduled, WaitingRelease, Revoking, Freed } = ExportState;

/** An export, at the exporter (SPEC.md 11.1). */
export const ExportMachine = defineMachine<ExportState, ExportEvent>({
  id: 'export',
  title: 'An export, at the exporter',
  section: '11.1',
  initial: Exported,
  states: {
    [Exported]: 'registered by the importer; DMABUF_EXPORT_FD accepted',
    [UnexportScheduled]: 'an unexport waits for its delay; DMABUF_EXPORT_FD accepted',
    [WaitingRelease]: 'DMABUF_NOTIFY_UNEXPORT sent; waiting for the importer\'s open fds; new fds refused (ERR_UNEXPORTED)',
    [Revoking]: 'no fd open; ending access to every grant, retried while any page is still mapped',
    [Freed]: 'every grant ended, directory pages scrubbed and freed, buffer reference dropped, counter reusable',
  },
  events: {
    unexport: 'unexport(delay) by the owner (a second one keeps the first delay)',
    reexport: 'the same buffer exported again to the same importer: cancels the scheduled unexport',
    'unexport-due': 'the delay ran out: DMABUF_NOTIFY_UNEXPORT is sent',
    'export-failed': 'DMABUF_EXPORT answered with an error or not in time (then NOTIFY_UNEXPORT is sent too)',
    'importer-died': 'DOMAIN_DIED(importer): every fd of it counts as released',
    'last-fd-released': 'no fd open any more (release operation, EXPORT_FD_FAILED, or none was open)',
    'grants-ended': 'every data and directory grant ended',
  },
  transitions: [
    { from: [Exported], event: 'unexport', to: UnexportScheduled },
    { from: [UnexportScheduled], event: 'reexport', to: Exported },
    { from: [UnexportScheduled], event: 'unexport-due', to: WaitingRelease },
    { from: [Exported, UnexportScheduled], event: 'export-failed', to: WaitingRelease },
    { from: [Exported, UnexportScheduled, WaitingRelease], event: 'importer-died', to: WaitingRelease },
    { from: [WaitingRelease], event: 'last-fd-released', to: Revoking },
    { from: [Revoking], event: 'grants-ended', to: Freed },
  ],
});

/** Move state of an export, orthogonal to ExportState. */
export const ExportMoveState = {
  /** The importer knows the current location. */
  Stable: 'stable',
  /** New pages granted and described; the importer is being told (MOVE_NOTIFY) or the old grants are ending. */
  Moving: 'moving',
} as const;
/** Move state of an export. */
export type ExportMoveState = ValueOf<typeof ExportMoveState>;

/** Events of an export's move state. */
export type ExportMoveEvent = 'prepared' | 'aborted' | 'notified' | 'dropped';

/** An export's moves, at the exporter (SPEC.md 11.8.4), orthogonal to its state of 11.1. */
export const ExportMoveMachine = defineMachine<ExportMoveState, ExportMoveEvent>({
  id: 'export_move',
  title: 'An export\'s moves, at the exporter',
  section: '11.8.4',
  initial: ExportMoveState.Stable,
  states: {
    stable: 'the importer knows the current location',
    moving: 'new pages granted and a new directory written (step 4); the importer is being told, the old grants are ending',
  },
  events: {
    prepared: 'step 4 done: the new location is granted and described',
    aborted: 'the move failed before the data moved: the new grants end at once, the new pages are freed',
    notified: 'step 6 answered, or the importer died, refused or did not answer in time; steps 8-9 (old grants end, old pages freed) go on in the background',
    dropped: 'the export began revoking before the new location was announced: the new grants end at once',
  },
  transitions: [
    { from: ['stable'], event: 'prepared', to: 'moving' },
    { from: ['moving'], event: 'aborted', to: 'stable' },
    { from: ['moving'], event: 'notified', to: 'stable' },
    { from: ['moving'], event: 'dropped', to: 'stable' },
  ],
});
