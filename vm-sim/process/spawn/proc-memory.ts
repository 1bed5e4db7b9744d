/**
 * A process's memory as Linux's /proc reports it (proc(5)): its resident set
 * now (VmRSS) and its highest since the last reset (VmHWM, the kernel's
 * high-water mark: exact, however short the peak was, where a sample can
 * miss it). Used to bound what a hostile domain can make the backend hold.
 */
import { readFileSync, writeFileSync } from 'node:fs';

/** VmRSS (now) or VmHWM (highest since resetPeakRss) of `pid`, in bytes. Throws where /proc cannot tell. */
export function rssBytes(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`/proc/${pid}/status has no ${field}`);
  return Number(m[1]) * 1024;
}

/** Resets the high-water mark of `pid` to its RSS now (clear_refs "5"; the process must be ours). */
export function resetPeakRss(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}
