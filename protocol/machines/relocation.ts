/** A buffer's relocation to new pages, at the exporter (SPEC.md 11.8.2, steps 3, 5 and 9). */
import { defineMachine, type ValueOf } from '../state-machine.ts';

/** States of one relocation. */
export const RelocationState = {
  /** New frames allocated (step 3), data not copied. */
  Prepared: 'prepared',
  /** Data copied; the buffer uses the new frames (step 5); the old ones wait to retire. */
  Committed: 'committed',
  /** Abandoned before the new frames became the buffer's; they were freed. */
  Aborted: 'aborted',
  /** The old frames were scrubbed and freed (step 9). */
  Retired: 'retired',
} as const;
/** States of one relocation. */
export type RelocationState = ValueOf<typeof RelocationState>;

/** Events of a relocation. */
export type RelocationEvent = 'commit' | 'abort' | 'retire';

const { Prepared, Committed, Aborted, Retired } = RelocationState;

/** A buffer's relocation to new pages, at the exporter (SPEC.md 11.8.2). */
export const RelocationMachine = defineMachine<RelocationState, RelocationEvent>({
  id: 'relocation',
  title: 'A buffer\'s relocation to new pages, at the exporter',
  section: '11.8.2',
  initial: Prepared,
  states: {
    [Prepared]: 'the new pages are allocated, scrubbed (step 3); the buffer still uses the old ones',
    [Committed]: 'the data was copied and the new pages are the buffer\'s (step 5); the old pages wait until every old grant ended',
    [Aborted]: 'the move failed before the new pages became the buffer\'s (step 4, or the copy of step 5): the new pages were freed; the buffer is as before',
    [Retired]: 'every old grant ended: the old pages were scrubbed and freed (step 9)',
  },
  events: {
    commit: 'step 5: copy the data and make the new pages the buffer\'s (its own CPU views of the old pages are detached)',
    abort: 'step 4 or the copy of step 5 failed: free the new pages',
    retire: 'step 9: the old grants of every export ended; free the old pages',
  },
  transitions: [
    { from: [Prepared], event: 'commit', to: Committed },
    { from: [Prepared], event: 'abort', to: Aborted },
    { from: [Committed], event: 'retire', to: Retired },
  ],
});
