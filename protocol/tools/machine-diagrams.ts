/**
 * Renders a declared state machine for SPEC.md: its states, its transition
 * table and a Mermaid state diagram, all from the one declaration, so the
 * drawing cannot differ from what the code allows.
 */
import type { StateMachine } from '../state-machine.ts';

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function mermaidId(state: string): string {
  return state.replace(/[^A-Za-z0-9]/g, '_');
}

/** The Mermaid `stateDiagram-v2` of a machine (an edge per transition, events as labels). */
export function renderMermaid(machine: StateMachine<string, string>): string {
  const { decl } = machine;
  const lines = ['```mermaid', 'stateDiagram-v2'];
  for (const state of machine.states) {
    if (mermaidId(state) !== state) lines.push(`    state "${state}" as ${mermaidId(state)}`);
  }
  lines.push(`    [*] --> ${mermaidId(decl.initial)}`);
  for (const t of decl.transitions) {
    for (const from of t.from) lines.push(`    ${mermaidId(from)} --> ${mermaidId(t.to)}: ${t.event}`);
  }
  for (const state of machine.states) {
    if (!decl.transitions.some((t) => t.from.includes(state))) lines.push(`    ${mermaidId(state)} --> [*]`);
  }
  lines.push('```');
  return lines.join('\n');
}

/** A machine's generated block: states, transitions, diagram. */
export function renderMachine(machine: StateMachine<string, string>): string {
  const { decl } = machine;
  const out = [
    `**${decl.title}** (declared in \`protocol/machines/\`; rules in section ${decl.section}). Starts in \`${decl.initial}\`.`,
    '',
    '| state | meaning |',
    '|---|---|',
    ...machine.states.map((s) => `| \`${s}\` | ${cell(decl.states[s]!)} |`),
    '',
    '| from | event | to |',
    '|---|---|---|',
    ...decl.transitions.map((t) => `| ${t.from.map((s) => `\`${s}\``).join(', ')} | \`${t.event}\`: ${cell(decl.events[t.event]!)} | \`${t.to}\` |`),
    '',
    'Any other event in any state is refused: the implementation throws `IllegalTransitionError` (`ERR_INTERNAL`) and the state is unchanged.',
    '',
    renderMermaid(machine),
  ];
  return out.join('\n');
}
