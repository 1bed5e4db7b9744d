/** A buffer's move gate, at the exporter (SPEC.md 11.8.4). */
import { defineMachine, type ValueOf } from '../state-machine.ts';

/** States of a buffer with respect to moves. */
export const MoveGateState = {
  /** No move requested. */
  Idle: 'idle',
  /** A move was requested and waits for pins and CPU accesses to go (uses are not held back). */
  MoveWaiting: 'move-waiting',
  /** A move runs: new uses wait until it completed. */
  Moving: 'moving',
} as const;
/** States of a buffer with respect to moves. */
export type MoveGateState = ValueOf<typeof MoveGateState>;

/** Events of a move gate. */
export type MoveGateEvent = 'move-requested' | 'move-starts' | 'moves-given-up' | 'move-ends' | 'move-ends-another-waits';

const { Idle, MoveWaiting, Moving } = MoveGateState;

/** A buffer's moves and uses, at the exporter (SPEC.md 11.8.4). */
export const MoveGateMachine = defineMachine<MoveGateState, MoveGateEvent>({
  id: 'move_gate',
  title: 'A buffer\'s moves, at the exporter',
  section: '11.8.4',
  initial: Idle,
  states: {
    [Idle]: 'no move requested',
    [MoveWaiting]: 'a move was requested and waits for every pin and CPU access to go; new uses are not held back',
    [Moving]: 'a move runs alone: a new pin, CPU access or static mapping waits until it completed',
  },
  events: {
    'move-requested': 'move() on an idle buffer (further requests wait in turn: the state is unchanged)',
    'move-starts': 'no pin, no CPU access and no other move: the waiting move starts',
    'moves-given-up': 'the last waiting move gave up: asked not to wait (ERR_PINNED, ERR_BUSY) or timed out (ERR_TIMEOUT)',
    'move-ends': 'every importer answered (old pages retire until their grants end); no other move waits',
    'move-ends-another-waits': 'as move-ends, with another move waiting',
  },
  transitions: [
    { from: [Idle], event: 'move-requested', to: MoveWaiting },
    { from: [MoveWaiting], event: 'move-starts', to: Moving },
    { from: [MoveWaiting], event: 'moves-given-up', to: Idle },
    { from: [Moving], event: 'move-ends', to: Idle },
    { from: [Moving], event: 'move-ends-another-waits', to: MoveWaiting },
  ],
});
