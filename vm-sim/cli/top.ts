/**
 * `hdmabuf top --url URL --token TOKEN`: watches a running backend through
 * a read-only observer connection (SPEC.md 9.6): HV_STATS every --interval
 * ms, drawn in place on a TTY (one screen per sample otherwise). Stops on
 * Ctrl-C, after --count samples, or when the backend goes away.
 */
import { HV_STATS_V2 } from '../../protocol/messages/control.ts';
import { HvClient } from '../../src/transport/hv-client.ts';
import { renderTop, type TopSample } from '../live/top-view.ts';
import { UsageError, type Command, type Io } from './command.ts';
import { write } from './output.ts';

/** Watches `url` until stopped; resolves with the exit code. */
export async function watchBackend(url: string, token: string, intervalMs: number, count: number, io: Io, signal?: AbortSignal): Promise<number> {
  const client = await HvClient.connect({ url, domid: 0, token, name: 'top' });
  const tty = io.stdout.isTTY === true;
  let prev: TopSample | undefined;
  let closed = false;
  let closing = false;
  client.on('close', () => { if (!closing) closed = true; });
  try {
    for (let n = 0; (count === 0 || n < count) && !closed && !signal?.aborted; n++) {
      if (n > 0) await sleep(intervalMs, signal);
      if (closed || signal?.aborted) break;
      let stats;
      try {
        stats = await client.call(HV_STATS_V2, {}, 10_000);
      } catch (e) {
        if (closed) break;
        throw e;
      }
      const now: TopSample = { stats, at: Date.now() };
      const text = renderTop(url, now, prev, intervalMs).join('\n');
      // On a TTY: cursor home, draw, clear what is left of the previous screen.
      await write(io.stdout, tty ? `\x1b[H${text.replace(/\n/g, '\x1b[K\n')}\x1b[K\x1b[J` : `${text}\n\n`);
      prev = now;
    }
  } finally {
    closing = true;
    // Closing a connection the backend already closed may fail; that close is reported just below.
    await client.close().catch(() => undefined);
  }
  if (closed) await write(io.stderr, 'hdmabuf top: the backend closed the connection\n');
  return 0;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** A whole number option. */
export function wholeNumber(option: string, text: unknown, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  if (typeof text !== 'string' || !/^\d+$/.test(text) || Number(text) < min) throw new UsageError(`--${option}: a whole number of at least ${min}, not ${JSON.stringify(text)}`);
  return Number(text);
}

export const topCommand: Command = {
  name: 'top',
  summary: 'Watches a running backend (domains, their state, grants in use and busy, mappings, ports, requests in flight) through a read-only observer connection (SPEC.md 9.6), refreshed in place.',
  args: '',
  options: {
    url: { type: 'string', arg: 'URL', help: 'the backend, e.g. ws://127.0.0.1:PORT (its ready line says)' },
    token: { type: 'string', arg: 'TOKEN', help: "the backend's observerToken (its ready line says, SPEC.md 9.5)" },
    interval: { type: 'string', arg: 'MS', help: 'milliseconds between samples (default 500)' },
    count: { type: 'string', arg: 'N', help: 'stop after N samples (default 0: until Ctrl-C or the backend stops)' },
  },
  async run(values, positionals, io) {
    if (positionals.length > 0) throw new UsageError(`top: unexpected argument(s): ${positionals.join(' ')}`);
    const url = values.url;
    const token = values.token;
    if (typeof url !== 'string' || !/^wss?:\/\//.test(url)) throw new UsageError('top: --url ws://HOST:PORT is required');
    if (typeof token !== 'string' || token === '') throw new UsageError('top: --token TOKEN is required');
    const interval = wholeNumber('interval', values.interval, 500, 20);
    const count = wholeNumber('count', values.count, 0, 0);
    const stop = new AbortController();
    const onSignal = (): void => stop.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      return await watchBackend(url, token, interval, count, io, stop.signal);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};
