/**
 * Collapses repeated blocks of diagram lines, so that 300 frames of the
 * same exchange read as "the first few, then a loop of N more".
 */

/** One line of a diagram body. */
export interface DiagramLine {
  readonly text: string;
}

/** Longest block (in lines) looked for. */
export const MAX_PERIOD = 24;
/** A block must repeat at least this many times to be collapsed. */
export const MIN_REPEATS = 4;
/** Repetitions shown in full before the loop. */
export const SHOWN_REPEATS = 2;

/**
 * Greedy left to right: at each position, the block length (up to
 * MAX_PERIOD) whose consecutive repetitions cover the most lines wins if it
 * repeats at least MIN_REPEATS times; it is emitted SHOWN_REPEATS times,
 * then once inside `loop <n> more times`, where n counts the repetitions
 * not shown. Returns Mermaid body lines (unindented; loop contents
 * indented by two spaces).
 */
export function collapseRepeats(lines: readonly DiagramLine[]): string[] {
  const text = lines.map((l) => l.text);
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    let best: { p: number; c: number } | undefined;
    for (let p = 1; p <= MAX_PERIOD && i + p * MIN_REPEATS <= text.length; p++) {
      let c = 1;
      while (i + (c + 1) * p <= text.length && sameBlock(text, i, i + c * p, p)) c++;
      if (c >= MIN_REPEATS && (!best || c * p > best.c * best.p)) best = { p, c };
    }
    if (!best) {
      out.push(text[i]!);
      i++;
      continue;
    }
    for (let r = 0; r < SHOWN_REPEATS; r++) out.push(...text.slice(i + r * best.p, i + (r + 1) * best.p));
    out.push(`loop ${best.c - SHOWN_REPEATS} more times`);
    for (const t of text.slice(i, i + best.p)) out.push(`  ${t}`);
    out.push('end');
    i += best.c * best.p;
  }
  return out;
}

function sameBlock(text: readonly string[], a: number, b: number, p: number): boolean {
  for (let k = 0; k < p; k++) if (text[a + k] !== text[b + k]) return false;
  return true;
}
