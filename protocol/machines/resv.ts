/** A shared buffer's reservation object (Linux's dma_resv), at its exporter (SPEC.md 11A.7, 11A.12). */
import { defineMachine, type ValueOf } from '../state-machine.ts';

/** States of a reservation object. */
export const ResvState = {
  /** Made on the buffer's first add; adds and snapshots each run as one atomic step. */
  Live: 'live',
  /** Its buffer was released (or the layer unloaded): its entries are dropped, nothing more happens on it. */
  Gone: 'gone',
} as const;
/** States of a reservation object. */
export type ResvState = ValueOf<typeof ResvState>;

/** Events of a reservation object. */
export type ResvEvent = 'fences-added' | 'snapshot-taken' | 'dropped';

const { Live, Gone } = ResvState;

/** A shared buffer's reservation object, at its exporter (SPEC.md 11A.12). */
export const ResvMachine = defineMachine<ResvState, ResvEvent>({
  id: 'resv',
  title: 'A shared buffer\'s reservation object, at its exporter',
  section: '11A.7',
  initial: Live,
  states: {
    [Live]: 'made on the buffer\'s first add (the exporter\'s own, or an importer\'s DMABUF_RESV_ADD); before it a snapshot is empty and a CPU access waits for nothing. Every add and every snapshot is one atomic step',
    [Gone]: 'the buffer was released, or the dma-buf sync layer unloaded: its entries are dropped (every fence in it completes anyway: no fence needs cleaning up) and nothing more is added or read',
  },
  events: {
    'fences-added': 'an add (11A.7\'s add rule, one request\'s fences in one step): each fence recycles a signalled entry, supersedes or promotes one of its own timeline, or is appended',
    'snapshot-taken': 'a snapshot at a usage: the unsignalled entries of that usage or stronger (DMABUF_RESV_GET, an export of a sync_file, poll, begin_cpu_access)',
    dropped: 'its buffer was released (forgotten the next time the exporter\'s reservation objects are touched), or the layer unloaded',
  },
  transitions: [
    { from: [Live], event: 'fences-added', to: Live },
    { from: [Live], event: 'snapshot-taken', to: Live },
    { from: [Live], event: 'dropped', to: Gone },
  ],
});
