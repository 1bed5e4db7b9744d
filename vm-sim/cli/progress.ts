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

/** Progress to `out`: in place on a TTY (every counted task still running on one line), plain lines otherwise; `now` is injectable for tests. */
export function progressWriter(out: Io['stdout'], env: NodeJS.ProcessEnv, now: () => number = () => performance.now()): ProgressWriter {
  const tty = out.isTTY === true && env.TERM !== 'dumb';
  const st = style(useColour(out, env));
  const started = new Map<string, { t: number; done: number }>();
  /** When each task last printed a plain line (not a TTY: at most one a second per task). */
  const printed = new Map<string, number>();
  /** Counted tasks still running, shown in place on a TTY. */
  const active = new Map<string, string>();
  let shown = false;

  const clear = (): void => {
    if (shown) out.write('\r\x1b[K');
    shown = false;
  };
  const draw = (): void => {
    if (active.size === 0) return;
    const width = Math.max(20, (out.columns ?? 100) - 1);
    const text = [...active.values()].join('  |  ');
    out.write(st.dim(text.length > width ? `${text.slice(0, width - 1)}…` : text));
    shown = true;
  };
  return {
    line(text) {
      const m = COUNTED.exec(text);
      if (!m) {
        clear();
        out.write(`${text}\n`);
        if (tty) draw();
        return;
      }
      const key = `${m[1]}: ${m[2]}`;
      const done = Number(m[3]);
      const total = Number(m[4]);
      const t = now();
      let first = started.get(key);
      if (!first) {
        first = { t, done };
        started.set(key, first);
      }
      const elapsed = (t - first.t) / 1000;
      const r = elapsed > 0 ? (done - first.done) / elapsed : NaN;
      const pct = total > 0 ? Math.floor((done / total) * 100) : 100;
      const finished = done >= total;
      const tail = finished
        ? `${Number.isFinite(r) && r > 0 ? `, ${rate(r)}` : ''}, ${duration(elapsed)}`
        : Number.isFinite(r) && r > 0 ? `, ${rate(r)}, ETA ${duration((total - done) / r)}` : '';
      const textOut = `${key} ${done}/${total} (${pct}%${tail})`;
      if (finished) started.delete(key);
      if (!tty) {
        const last = printed.get(key);
        if (finished || last === undefined || t - last >= 1000) {
          printed.set(key, t);
          out.write(`${textOut}\n`);
        }
        if (finished) printed.delete(key);
        return;
      }
      clear();
      if (finished) {
        active.delete(key);
        out.write(`${textOut}\n`);
      } else {
        active.set(key, textOut);
      }
      draw();
    },
    done() {
      clear();
      active.clear();
    },
    summary(lines) {
      const at = lines.findIndex((l) => l.trim() !== '');
      if (at < 0) return lines;
      return lines.map((l, i) => (i === at ? (/: ok\b/.test(l) ? st.ok(l) : st.bad(l)) : /^\s+✗/.test(l) ? st.bad(l) : l));
    },
  };
}
