/** Terminal output: colour only on a TTY (NO_COLOR and FORCE_COLOR honoured), and writing before exit. */
import type { Io } from './command.ts';

/** Whether to colour a stream: FORCE_COLOR (not "0") forces it, FORCE_COLOR=0 or NO_COLOR turn it off, else a TTY that is not "dumb". */
export function useColour(stream: Io['stdout'], env: NodeJS.ProcessEnv): boolean {
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '') return env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false';
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return stream.isTTY === true && env.TERM !== 'dumb';
}

/** SGR styles. */
export interface Style {
  ok(text: string): string;
  bad(text: string): string;
  dim(text: string): string;
  bold(text: string): string;
}

const sgr = (on: number, off: number) => (text: string): string => `\x1b[${on}m${text}\x1b[${off}m`;

/** Styles that colour, or leave text alone. */
export function style(enabled: boolean): Style {
  if (!enabled) return { ok: (t) => t, bad: (t) => t, dim: (t) => t, bold: (t) => t };
  return { ok: sgr(32, 39), bad: sgr(31, 39), dim: sgr(2, 22), bold: sgr(1, 22) };
}

/** Writes `text` and resolves once it is flushed (a pipe may be slow; exit must not cut it). */
export function write(stream: NodeJS.WritableStream, text: string): Promise<void> {
  return new Promise((resolve) => {
    if (!text) return resolve();
    stream.write(text, () => resolve());
  });
}
