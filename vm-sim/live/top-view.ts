/**
 * The live view's screen: a backend's HV_STATS (SPEC.md 9.4) as a table of
 * domains (state, connection, grants in use and busy, mappings, ports) and
 * the backend's totals (routed requests in flight, files, internal
 * errors), each count marked with its change since the previous sample.
 * Fields HV_STATS gains later (bytes routed, say) are shown as they come.
 */
import type { HvStatsBody } from '../../src/hv/stats.ts';

/** One sample and when it was taken. */
export interface TopSample {
  readonly stats: HvStatsBody;
  /** Date.now() of the sample. */
  readonly at: number;
}

const COLUMNS = [
  ['grantsInUse', 'grants'], ['busyGrants', 'busy'], ['mappings', 'maps'], ['ports', 'ports'],
] as const;

/** The screen's lines for `now`, with changes since `prev`. */
export function renderTop(url: string, now: TopSample, prev: TopSample | undefined, intervalMs: number): string[] {
  const s = now.stats;
  const before = new Map((prev?.stats.domains ?? []).map((d) => [d.domid, d]));
  const time = new Date(now.at).toISOString().slice(11, 23);
  const lines = [`hdmabuf top  ${url}  ${time} UTC  every ${intervalMs} ms  (Ctrl-C to quit)`, ''];
  const extraKeys = [...new Set(s.domains.flatMap((d) => Object.entries(d).filter(([k, v]) => typeof v === 'number' && k !== 'domid' && !COLUMNS.some(([c]) => c === k)).map(([k]) => k)))];
  const head = ['dom', 'name', 'state', 'conn', ...COLUMNS.map(([, h]) => h), ...extraKeys];
  const rows: string[][] = s.domains.map((d) => {
    const p = before.get(d.domid) as Record<string, unknown> | undefined;
    const rec = d as unknown as Record<string, unknown>;
    const cell = (k: string): string => {
      const v = rec[k] as number;
      const was = p?.[k];
      return typeof was === 'number' && was !== v ? `${v} (${v > was ? '+' : ''}${v - was})` : String(v);
    };
    return [String(d.domid), d.name, d.state, d.connected ? 'yes' : 'no', ...COLUMNS.map(([k]) => cell(k)), ...extraKeys.map(cell)];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]): string => r.map((c, i) => (i <= 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  lines.push(fmt(head), ...rows.map(fmt));
  if (rows.length === 0) lines.push('(no guest domain)');
  lines.push('');
  const totals: string[] = [];
  for (const [k, v] of Object.entries(s)) {
    if (typeof v !== 'number') continue;
    const was = (prev?.stats as Record<string, unknown> | undefined)?.[k];
    totals.push(`${k === 'routedPending' ? 'requests in flight (routed)' : k} ${v}${typeof was === 'number' && was !== v ? ` (${v > was ? '+' : ''}${v - was})` : ''}`);
  }
  totals.push(`shm files ${s.shmFiles.length}`);
  const sum = (k: 'grantsInUse' | 'busyGrants' | 'mappings' | 'ports'): number => s.domains.reduce((n, d) => n + d[k], 0);
  totals.push(`grants ${sum('grantsInUse')} (busy ${sum('busyGrants')}), mappings ${sum('mappings')}, ports ${sum('ports')}`);
  lines.push(totals.join('   '));
  return lines;
}
