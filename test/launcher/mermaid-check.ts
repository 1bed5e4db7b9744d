/**
 * A structural check of a Mermaid sequence diagram, as the tests need it:
 * it starts with `sequenceDiagram`, declares its participants, every other
 * line is a well-formed arrow between declared participants, a note, a
 * comment, or a balanced loop block. Returns the problems found.
 */
const ARROW = /^([A-Za-z][A-Za-z0-9_]*)(-->>|->>|--x|-x|-->|->|--\)|-\))([A-Za-z][A-Za-z0-9_]*): (.+)$/;
const PARTICIPANT = /^participant ([A-Za-z][A-Za-z0-9_]*)(?: as (.+))?$/;
const NOTE = /^Note (?:over|left of|right of) ([A-Za-z][A-Za-z0-9_]*)(?:,([A-Za-z][A-Za-z0-9_]*))?: .+$/;

/** The structure of a diagram, and what is wrong with it. */
export interface DiagramCheck {
  problems: string[];
  participants: string[];
  arrows: number;
  loops: number;
}

/** Checks a diagram's text. */
export function checkSequenceDiagram(text: string): DiagramCheck {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const problems: string[] = [];
  const participants: string[] = [];
  let arrows = 0;
  let loops = 0;
  let depth = 0;
  if (lines[0] !== 'sequenceDiagram') problems.push(`first line is ${JSON.stringify(lines[0])}, not sequenceDiagram`);
  const known = (id: string | undefined, at: number): void => {
    if (id !== undefined && !participants.includes(id)) problems.push(`line ${at + 1}: ${id} is not a declared participant`);
  };
  lines.slice(1).forEach((line, i) => {
    const at = i + 1;
    let m: RegExpExecArray | null;
    if (line.startsWith('%%')) return;
    if ((m = PARTICIPANT.exec(line))) {
      if (arrows > 0) problems.push(`line ${at + 1}: participant declared after the first message`);
      participants.push(m[1]!);
    } else if ((m = ARROW.exec(line))) {
      known(m[1], at);
      known(m[3], at);
      arrows++;
    } else if ((m = NOTE.exec(line))) {
      known(m[1], at);
      known(m[2], at);
    } else if (/^loop .+$/.test(line)) {
      depth++;
      loops++;
    } else if (line === 'end') {
      if (--depth < 0) problems.push(`line ${at + 1}: end without a block`);
    } else {
      problems.push(`line ${at + 1}: not a sequence-diagram line: ${line}`);
    }
  });
  if (depth > 0) problems.push(`${depth} block(s) not closed`);
  if (participants.length === 0) problems.push('no participant declared');
  return { problems, participants, arrows, loops };
}
