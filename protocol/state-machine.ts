/**
 * Declared state machines: each machine of the protocol and of its
 * reference implementation is one transition table (states, events, the
 * transitions they allow), and every change of state goes through
 * `StateMachine.next`, which refuses what the table does not allow.
 * SPEC.md's state diagrams are generated from the same tables
 * (protocol/tools/spec-tables.ts), so the drawing and the code cannot differ.
 *
 * Convention for states, here and everywhere else in the code (a state kept
 * in a typed array uses numbers, every other state strings): an `as const`
 * object of named values plus a type of the same name, never a TypeScript
 * `enum` or a bare union (test/architecture/state-declarations.test.ts), e.g.
 *   export const ExportState = { Exported: 'exported', ... } as const;
 *   export type ExportState = (typeof ExportState)[keyof typeof ExportState];
 */
import { ProtocolError } from './errors.ts';

/** The values of an `as const` object of states or events. */
export type ValueOf<T> = T[keyof T];

/** One row of a transition table: in any of `from`, `event` leads to `to`. */
export interface TransitionDecl<S extends string, E extends string> {
  readonly from: readonly S[];
  readonly event: E;
  readonly to: S;
}

/** A state machine as declared: what SPEC.md draws and what the code obeys. */
export interface MachineDecl<S extends string, E extends string> {
  /** Short id: SPEC.md's generated block is `machine_<id>`. */
  readonly id: string;
  /** What the machine is the state of, e.g. "an export (exporter side)". */
  readonly title: string;
  /** The SPEC.md section that gives its rules. */
  readonly section: string;
  /** The state a new instance starts in. */
  readonly initial: S;
  /** Every state, with its meaning. */
  readonly states: Readonly<Record<S, string>>;
  /** Every event, with what causes it. */
  readonly events: Readonly<Record<E, string>>;
  /** The allowed transitions; any (state, event) pair not listed is illegal. */
  readonly transitions: ReadonlyArray<TransitionDecl<S, E>>;
}

/** A transition the table does not allow: a defect of the caller, never of the peer. */
export class IllegalTransitionError extends ProtocolError {
  readonly machine: string;
  readonly from: string;
  readonly event: string;

  constructor(machine: string, from: string, event: string) {
    super('ERR_INTERNAL', `illegal transition of the ${machine} state machine: event '${event}' in state '${from}'`);
    this.name = 'IllegalTransitionError';
    this.machine = machine;
    this.from = from;
    this.event = event;
  }
}

/** Sees every transition taken: the machine's id, the state it left and the event. */
export type TransitionObserver = (machine: string, from: string, event: string) => void;

let transitionObserver: TransitionObserver | undefined;

/**
 * Sets (or, with undefined, clears) the one observer of every transition
 * taken by any machine of this process: how a run records which declared
 * transitions the code took (vm-sim/trace/transition-log.ts). Refused
 * transitions are not seen.
 */
export function observeTransitions(observer: TransitionObserver | undefined): void {
  transitionObserver = observer;
}

/** A declared machine: looks transitions up and refuses illegal ones. */
export class StateMachine<S extends string, E extends string> {
  readonly decl: MachineDecl<S, E>;
  /** from -> event -> to (nested maps: a lookup allocates nothing). */
  private readonly table = new Map<S, Map<E, S>>();

  constructor(decl: MachineDecl<S, E>) {
    this.decl = decl;
    for (const t of decl.transitions) {
      for (const from of t.from) {
        let row = this.table.get(from);
        if (!row) this.table.set(from, row = new Map());
        if (row.has(t.event)) throw new Error(`${decl.id}: two transitions for event '${t.event}' in state '${from}'`);
        if (!Object.hasOwn(decl.states, from) || !Object.hasOwn(decl.states, t.to)) throw new Error(`${decl.id}: undeclared state in ${from} -> ${t.to}`);
        if (!Object.hasOwn(decl.events, t.event)) throw new Error(`${decl.id}: undeclared event '${t.event}'`);
        row.set(t.event, t.to);
      }
    }
  }

  /** Every declared state. */
  get states(): S[] {
    return Object.keys(this.decl.states) as S[];
  }

  /** Every declared event. */
  get events(): E[] {
    return Object.keys(this.decl.events) as E[];
  }

  /** True when the table allows `event` in `from`. */
  allows(from: S, event: E): boolean {
    return this.table.get(from)?.has(event) === true;
  }

  /** The state after `event` in `from`; IllegalTransitionError when the table does not allow it. */
  next(from: S, event: E): S {
    const to = this.table.get(from)?.get(event);
    if (to === undefined) throw new IllegalTransitionError(this.decl.id, from, event);
    if (transitionObserver) transitionObserver(this.decl.id, from, event);
    return to;
  }

  /** A new instance in the initial state. */
  start(): MachineState<S, E> {
    return new MachineState(this, this.decl.initial);
  }
}

/** The current state of one instance of a machine; it changes only through `apply`. */
export class MachineState<S extends string, E extends string> {
  readonly machine: StateMachine<S, E>;
  private current: S;

  constructor(machine: StateMachine<S, E>, initial: S) {
    this.machine = machine;
    this.current = initial;
  }

  /** The current state. */
  get state(): S {
    return this.current;
  }

  /** True when the current state is one of `states`. */
  is(...states: S[]): boolean {
    return states.includes(this.current);
  }

  /** True when the table allows `event` now. */
  allows(event: E): boolean {
    return this.machine.allows(this.current, event);
  }

  /** Takes the transition of `event`; IllegalTransitionError (state unchanged) when the table does not allow it. */
  apply(event: E): S {
    this.current = this.machine.next(this.current, event);
    return this.current;
  }
}

/** Declares a machine (checks that its table is consistent). */
export function defineMachine<S extends string, E extends string>(decl: MachineDecl<S, E>): StateMachine<S, E> {
  return new StateMachine(decl);
}
