/**
 * Folds repeated blocks of diagram lines, so that 300 frames of the same
 * exchange read as "the first two, then a loop of 298 more" with the range
 * of what varied (frame 3..299), and elides the middle of a diagram that is
 * still too long, so that its start and its end (the teardown) always show.
 */

/** One line of a diagram body: a fixed prefix (who to whom) and a label whose numbers may vary. */
export interface DiagramLine {
  /** e.g. "d1->>d2: " (compared as is). */
  readonly prefix: string;
  /** e.g. "SIM_FRAME_HANDOFF frame 12, buf 1:2" (compared with its numbers abstracted). */
  readonly label: string;
  /**
   * False for a line that answers an earlier one (a reply): a folded block
   * starts at a line that may start an exchange, so that a loop holds whole
   * request-reply pairs rather than a reply and the next request.
   */
  readonly startsBlock?: boolean;
}

/** A top-level unit of the folded body: one line, or a whole loop block. Never split by elision. */
export interface DiagramItem {
  readonly lines: string[];
}

/** Longest block (in lines) looked for. */
export const MAX_PERIOD = 24;
/** A block must repeat at least this many times to be folded. */
export const MIN_REPEATS = 4;
/** Repetitions shown in full before the loop. */
export const SHOWN_REPEATS = 2;

const NUMBER = /\d+/g;

/** What repetitions compare: the prefix, and the label with every number abstracted. */
function shapeOf(l: DiagramLine): string {
  return `${l.prefix}${l.label.replace(NUMBER, '#')}`;
}

/**
 * Greedy left to right: at each position, the block length (up to
 * MAX_PERIOD) whose consecutive repetitions (equal shapes) cover the most
 * lines wins if it repeats at least MIN_REPEATS times. A block is aligned to
 * start at a line that starts an exchange (the lines before it stay single).
 * It is emitted SHOWN_REPEATS times as it was, then once inside
 * `loop <n> more times`, where n counts the repetitions not shown and each
 * number that varied among them reads as its range ("frame 3..299").
 * Returns items whose lines are unindented (loop contents indented by two
 * spaces).
 */
export function foldRepeats(lines: readonly DiagramLine[]): DiagramItem[] {
  const shapes = lines.map(shapeOf);
  const text = lines.map((l) => `${l.prefix}${l.label}`);
  const out: DiagramItem[] = [];
  let i = 0;
  while (i < lines.length) {
    const best = bestBlock(shapes, i);
    if (!best) {
      out.push({ lines: [text[i]!] });
      i++;
      continue;
    }
    // Align on the first line of the block that starts an exchange; what precedes stays single.
    const shift = lines.slice(i, i + best.p).findIndex((l) => l.startsBlock !== false);
    if (shift > 0) {
      for (let k = 0; k < shift; k++) out.push({ lines: [text[i + k]!] });
      i += shift;
      continue;
    }
    for (let r = 0; r < SHOWN_REPEATS; r++) {
      for (const t of text.slice(i + r * best.p, i + (r + 1) * best.p)) out.push({ lines: [t] });
    }
    const block: string[] = [`loop ${best.c - SHOWN_REPEATS} more times`];
    for (let k = 0; k < best.p; k++) {
      const reps: DiagramLine[] = [];
      for (let r = SHOWN_REPEATS; r < best.c; r++) reps.push(lines[i + r * best.p + k]!);
      block.push(`  ${reps[0]!.prefix}${rangeLabel(reps.map((l) => l.label))}`);
    }
    block.push('end');
    out.push({ lines: block });
    i += best.c * best.p;
  }
  return out;
}

/** foldRepeats, flattened to lines. */
export function collapseRepeats(lines: readonly DiagramLine[]): string[] {
  return foldRepeats(lines).flatMap((item) => item.lines);
}

function bestBlock(shapes: readonly string[], i: number): { p: number; c: number } | undefined {
  let best: { p: number; c: number } | undefined;
  for (let p = 1; p <= MAX_PERIOD && i + p * MIN_REPEATS <= shapes.length; p++) {
    let c = 1;
    while (i + (c + 1) * p <= shapes.length && sameBlock(shapes, i, i + c * p, p)) c++;
    if (c >= MIN_REPEATS && (!best || c * p > best.c * best.p)) best = { p, c };
  }
  return best;
}

function sameBlock(text: readonly string[], a: number, b: number, p: number): boolean {
  for (let k = 0; k < p; k++) if (text[a + k] !== text[b + k]) return false;
  return true;
}

/** Labels of one shape, as one label whose varying numbers read min..max. */
export function rangeLabel(labels: readonly string[]): string {
  const first = labels[0]!;
  const values = labels.map((l) => (l.match(NUMBER) ?? []).map(Number));
  let slot = 0;
  return first.replace(NUMBER, (token) => {
    const k = slot++;
    let min = Infinity;
    let max = -Infinity;
    for (const v of values) {
      const x = v[k]!;
      if (x < min) min = x;
      if (x > max) max = x;
    }
    return min === max ? token : `${min}..${max}`;
  });
}

/**
 * Keeps at most `maxLines` lines (0: no limit) by eliding whole items from
 * the middle: the last items (at least the very last one, whatever its
 * size, so the teardown always shows) fill half the budget, the first
 * items the rest. Returns the items kept before and after the cut, and how
 * many lines were left out.
 */
export function elideMiddle(items: readonly DiagramItem[], maxLines: number): { head: DiagramItem[]; tail: DiagramItem[]; omitted: number } {
  const total = items.reduce((n, it) => n + it.lines.length, 0);
  if (maxLines <= 0 || total <= maxLines) return { head: [...items], tail: [], omitted: 0 };
  let t = items.length - 1;
  let used = items[t]!.lines.length;
  while (t > 0 && used + items[t - 1]!.lines.length <= Math.ceil(maxLines / 2)) used += items[--t]!.lines.length;
  let h = 0;
  while (h < t && used + items[h]!.lines.length <= maxLines) used += items[h++]!.lines.length;
  return { head: items.slice(0, h), tail: items.slice(t), omitted: total - used };
}
