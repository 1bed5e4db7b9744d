/** Sizes in scenario files: "64MiB", "1.5GiB", "4096", 4096, "512KiB", "2000kB". */

const UNITS: Record<string, number> = {
  '': 1, b: 1,
  kb: 1e3, mb: 1e6, gb: 1e9,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3,
  k: 1024, m: 1024 ** 2, g: 1024 ** 3,
};

/** Bytes of a size; throws RangeError naming what is wrong. */
export function parseBytes(value: number | string, what = 'size'): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${what}: ${value} is not a byte count`);
    return value;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new RangeError(`${what}: ${JSON.stringify(value)} is not a size (e.g. 4096, "64MiB", "2GiB")`);
  return Math.round(Number(m[1]) * unit);
}

/** "8.3 MB", "257.0 MiB"-style text for summaries (decimal units, as storage is quoted). */
export function formatBytes(n: number): string {
  if (n < 1e3) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

/** "812 µs", "3.4 ms", "1.20 s". */
export function formatUs(us: number): string {
  if (!Number.isFinite(us)) return 'n/a';
  if (us < 1000) return `${Math.round(us)} µs`;
  if (us < 1e6) return `${(us / 1000).toFixed(us < 1e4 ? 2 : 1)} ms`;
  return `${(us / 1e6).toFixed(2)} s`;
}
