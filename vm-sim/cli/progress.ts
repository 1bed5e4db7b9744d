/**
 * Progress lines of a run. A counted update (`render: frames 120/300`, as the
 * launcher relays a VM's progress events) gets a rate and an ETA; on a TTY
 * it is redrawn in place on one line, elsewhere each update is a plain
 * line. Other lines are printed as they come; the summary's first line is
 * coloured when colour is on.
 */
import type { Io } from './command.ts';
import { style, useColour } from './output.ts';

/** `who: what done/total`, the form of relayed progress events. */
const COUNTED = /^(.+?): (.+?) (\d+)\/(\d+)$/;

/** "3.2 s", "1 min 5 s". */
function duration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/** "1234/s", "12.5/s". */
function rate(r: number): string {
  return `${r >= 100 ? Math.round(r) : r.toFixed(1)}/s`;
}

/** The progress writer of one run. */
export interface ProgressWriter {
  line(text: string): void;
  /** Ends an in-place line, if one is shown. */
  done(): void;
  /** The summary, its status coloured when colour is on. */
  summary(lines: string[]): string[];
}

/** Progress to `out`: in place on a TTY, plain lines otherwise; `now` is injectable for tests. */
export function progressWriter(out: Io['stdout'], env: NodeJS.ProcessEnv, now: () => number = () => performance.now()): ProgressWriter {
  const tty = out.isTTY === true && env.TERM !== 'dumb';
  const st = style(useColour(out, env));
  const started = new Map<string, { t: number; done: number }>();
  let shown = '';

  const clear = (): void => {
    if (shown) out.write('\r\x1b[K');
  };
  return {
    line(text) {
      const m = COUNTED.exec(text);
      if (!m) {
        clear();
        out.write(`${text}\n`);
        if (shown) out.write(shown);
        return;
      }
      const key = `${m[1]}: ${m[2]}`;
      const done = Number(m[3]);
      const total = Number(m[4]);
      const t = now();
      const first = started.get(key) ?? { t, done };
      if (!started.has(key)) started.set(key, first);
      const elapsed = (t - first.t) / 1000;
      const r = elapsed > 0 ? (done - first.done) / elapsed : NaN;
      const pct = total > 0 ? Math.floor((done / total) * 100) : 100;
      const tail = done >= total
        ? `${Number.isFinite(r) ? `, ${rate(r)}` : ''}, ${duration(elapsed)}`
        : Number.isFinite(r) && r > 0 ? `, ${rate(r)}, ETA ${duration((total - done) / r)}` : '';
      const textOut = `${key} ${done}/${total} (${pct}%${tail})`;
      if (!tty) {
        out.write(`${textOut}\n`);
        return;
      }
      clear();
      if (done >= total) {
        out.write(`${textOut}\n`);
        shown = '';
        started.delete(key);
      } else {
        shown = st.dim(textOut);
        out.write(shown);
      }
    },
    done() {
      clear();
      shown = '';
    },
    summary(lines) {
      if (lines.length === 0) return lines;
      const [first, ...rest] = lines;
      const coloured = /: ok\b/.test(first!) ? st.ok(first!) : st.bad(first!);
      return [coloured, ...rest.map((l) => (/^\s+FAILED|^\s+✗/.test(l) ? st.bad(l) : l))];
    },
  };
}
