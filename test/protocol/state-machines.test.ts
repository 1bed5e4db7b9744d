/**
 * Every declared state machine (protocol/machines): each transition of its
 * table is taken, every other (state, event) pair is refused with
 * IllegalTransitionError and leaves the state unchanged, and SPEC.md draws
 * exactly the table.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../protocol/errors.ts';
import { MACHINES } from '../../protocol/machines/index.ts';
import { defineMachine, IllegalTransitionError, MachineState, observeTransitions } from '../../protocol/state-machine.ts';
import { renderMachine } from '../../protocol/tools/machine-diagrams.ts';

const specText = readFileSync(new URL('../../protocol/SPEC.md', import.meta.url), 'utf8');

// This file takes every transition by construction: under scripts/transition-coverage.ts it must not
// count as the code taking them, so it records nothing.
observeTransitions(undefined);

/** The state each (state, event) pair leads to by the table, or undefined where it is illegal. */
function expectedNext(machine: (typeof MACHINES)[number], from: string, event: string): string | undefined {
  return machine.decl.transitions.find((t) => t.event === event && t.from.includes(from))?.to;
}

describe.each(MACHINES.map((machine) => ({ id: machine.decl.id, machine })))('state machine $id', ({ id, machine }) => {
  const pairs = machine.states.flatMap((from) => machine.events.map((event) => ({ from, event, to: expectedNext(machine, from, event) })));
  const legal = pairs.filter((p) => p.to !== undefined);
  const illegal = pairs.filter((p) => p.to === undefined);

  it('takes every transition of its table', () => {
    expect(legal.length).toBe(machine.decl.transitions.reduce((n, t) => n + t.from.length, 0));
    for (const { from, event, to } of legal) {
      const instance = new MachineState(machine, from);
      expect(instance.allows(event), `${from} --${event}-->`).toBe(true);
      expect(instance.apply(event), `${from} --${event}-->`).toBe(to);
      expect(instance.state).toBe(to);
    }
  });

  it('refuses every other event in every state with IllegalTransitionError, state unchanged', () => {
    expect(illegal.length).toBeGreaterThan(0);
    for (const { from, event } of illegal) {
      const instance = new MachineState(machine, from);
      expect(instance.allows(event), `${from} --${event}-->`).toBe(false);
      let thrown: unknown;
      try {
        instance.apply(event);
      } catch (e) {
        thrown = e;
      }
      expect(thrown, `${from} --${event}--> must be refused`).toBeInstanceOf(IllegalTransitionError);
      expect(thrown).toBeInstanceOf(ProtocolError);
      expect(thrown).toMatchObject({ machine: id, from, event, code: 'ERR_INTERNAL' });
      expect(instance.state).toBe(from);
      expect(() => machine.next(from, event)).toThrow(IllegalTransitionError);
    }
  });

  it('reaches every state from its initial state and uses every event', () => {
    const reached = new Set([machine.decl.initial]);
    for (let grew = true; grew;) {
      grew = false;
      for (const t of machine.decl.transitions) {
        if (t.from.some((s) => reached.has(s)) && !reached.has(t.to)) { reached.add(t.to); grew = true; }
      }
    }
    expect([...reached].sort()).toEqual([...machine.states].sort());
    expect(new Set(machine.decl.transitions.map((t) => t.event))).toEqual(new Set(machine.events));
    expect(machine.start().state).toBe(machine.decl.initial);
  });

  it('is drawn in SPEC.md from its table', () => {
    const block = `<!-- BEGIN GENERATED: machine_${id} -->\n${renderMachine(machine)}\n<!-- END GENERATED: machine_${id} -->`;
    expect(specText).toContain(block);
    for (const t of machine.decl.transitions) {
      for (const from of t.from) expect(block).toContain(`${from.replace(/[^A-Za-z0-9]/g, '_')} --> ${t.to.replace(/[^A-Za-z0-9]/g, '_')}: ${t.event}`);
    }
  });
});

describe('defineMachine', () => {
  it('refuses a table with two transitions for one state and event, or undeclared names', () => {
    const base = { id: 't', title: 't', section: '0', initial: 'a' as const, states: { a: 'a', b: 'b' }, events: { go: 'go' } };
    expect(() => defineMachine({ ...base, transitions: [{ from: ['a'], event: 'go', to: 'b' }, { from: ['a'], event: 'go', to: 'a' }] })).toThrow(/two transitions/);
    expect(() => defineMachine({ ...base, transitions: [{ from: ['a'], event: 'go', to: 'c' as 'b' }] })).toThrow(/undeclared state/);
    expect(() => defineMachine({ ...base, transitions: [{ from: ['a'], event: 'stop' as 'go', to: 'b' }] })).toThrow(/undeclared event/);
  });
});

describe('MACHINES', () => {
  it('have distinct ids, and SPEC.md has a block for each', () => {
    const ids = MACHINES.map((m) => m.decl.id);
    expect(new Set(ids).size).toBe(ids.length);
    const blocks = [...specText.matchAll(/<!-- BEGIN GENERATED: machine_(\w+) -->/g)].map((m) => m[1]);
    expect(blocks.sort()).toEqual([...ids].sort());
  });
});

describe('the code and the tables', () => {
  /** Event names that src/ passes to a machine's apply or next, read from the source. */
  function eventsAppliedInSrc(): Set<string> {
    const used = new Set<string>();
    const root = new URL('../../src/', import.meta.url);
    const files = (readdirSync(root, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts'));
    for (const file of files) {
      const text = readFileSync(new URL(file, root), 'utf8');
      // A machine instance (lifecycle, map, moves, machine) or a machine's next.
      for (const call of text.matchAll(/(?:lifecycle|\bmap|\bmoves|\bmachine|Machine)\.(?:apply|next)\(([^;{}]*?)\);/g)) {
        for (const literal of call[1]!.matchAll(/'([a-z][a-z-]*)'/g)) used.add(literal[1]!);
      }
    }
    return used;
  }

  it('every declared event is applied somewhere in src/, and src/ applies no undeclared one', () => {
    const used = eventsAppliedInSrc();
    const declared = new Set(MACHINES.flatMap((m) => m.events));
    for (const machine of MACHINES) {
      for (const event of machine.events) expect(used, `${machine.decl.id}: event '${event}' is never applied`).toContain(event);
    }
    for (const event of used) expect(declared, `'${event}' is applied but no machine declares it`).toContain(event);
  });
});
