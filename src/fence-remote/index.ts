/**
 * Cross-VM fences: timelines whose signalled state lives in a page shared
 * read-only with observers, event-channel wake-ups, export and import of
 * fences and sync_files between domains. See protocol/SPEC.md section 11A.
 */
export { EPIPE, EPROTO, FENCE_ERR_CLOSED, FENCE_ERR_DETACHED, FENCE_ERR_OWNER_DIED, FENCE_ERR_PROTOCOL, statusText } from '../fence/errno.ts';
export * from '../guest/errors.ts';
export * from './timeline-page.ts';
export * from './slot-table.ts';
export * from './shared-timeline.ts';
export * from './remote-fence.ts';
export * from './remote-timeline.ts';
export * from './timeline-owner.ts';
export * from './timeline-observer.ts';
export * from './import-inbox.ts';
export * from './fence-bridge.ts';
export * from './fence-host.ts';
export type { FenceKernel } from './host-kernel.ts';
export {
  FenceMachine, FenceShareMachine, FenceShareState, FenceState, TimelineImportMachine, TimelineImportState, TimelineMachine, TimelineState,
} from '../../protocol/machines/fence.ts';
