/**
 * Sizes and trial counts of a benchmark run: the full run (the figures the
 * issue asks for) and --quick (the same figures at small sizes and one
 * trial, for the test that checks the report's shape).
 */
const MiB = 1024 * 1024;

/** One benchmark configuration. */
export interface BenchConfig {
  quick: boolean;
  /** Untimed first shares of a 1 MiB buffer on each pair before the first figure (warmUp in context.ts). */
  warmupShares: number;
  /** Trials of a first share (each a fresh export, import and map). */
  shareTrials: number;
  /** Trials of each copying baseline (memcpy, routed copy, raw WebSocket copy). */
  copyTrials: number;
  /** Handoff and ECHO round trips per trial, and trials (alternated). */
  roundTrips: number;
  roundTripTrials: number;
  /** Maps per map figure. */
  mapIterations: number;
  /** Triple-buffering throughput: the two sizes compared, frames per trial, trials. */
  throughputSizes: [number, number];
  throughputFrames: number;
  throughputTrials: number;
  /** Concurrent exports: the small table (baseline) and the large one. */
  exportsBaseline: number;
  exportsCount: number;
  /** Importers of the fan-out figure (the run starts that many importer VMs). */
  fanOut: number;
  fanOutTrials: number;
  /** The scale curve: buffer sizes, first-share trials per size and version, handoff round trips per size. */
  scaleSizes: number[];
  scaleTrials: number;
  scaleRoundTrips: number;
}

/** The full benchmark. */
export const FULL: BenchConfig = {
  quick: false,
  warmupShares: 30,
  shareTrials: 15, copyTrials: 5,
  roundTrips: 100, roundTripTrials: 21,
  mapIterations: 15,
  throughputSizes: [1 * MiB, 256 * MiB], throughputFrames: 3000, throughputTrials: 7,
  exportsBaseline: 1024, exportsCount: 65_536,
  fanOut: 8, fanOutTrials: 5,
  scaleSizes: [1 * MiB, 8 * MiB, 33 * MiB, 256 * MiB, 1024 * MiB], scaleTrials: 3, scaleRoundTrips: 200,
};

/** --quick: every figure, small and once. */
export const QUICK: BenchConfig = {
  quick: true,
  warmupShares: 1,
  shareTrials: 1, copyTrials: 1,
  roundTrips: 50, roundTripTrials: 1,
  mapIterations: 2,
  throughputSizes: [1 * MiB, 4 * MiB], throughputFrames: 100, throughputTrials: 1,
  exportsBaseline: 128, exportsCount: 512,
  fanOut: 2, fanOutTrials: 1,
  scaleSizes: [1 * MiB, 4 * MiB], scaleTrials: 1, scaleRoundTrips: 20,
};

/** Pages of the share figures: a 4K buffer from high-order chunks and a fully scattered one, with room. */
const SHARE_PAGES = 3 * 8100 + 2 * 2025;

/** Pages of the largest scale-curve buffer, with its directory. */
function scalePages(c: BenchConfig): number {
  return Math.max(...c.scaleSizes) / 4096 + 1024;
}

/** Pages the exporter VM needs: the largest phase (three throughput buffers, the many exports, the scale curve's largest buffer). */
export function exporterPages(c: BenchConfig): number {
  const throughput = 3 * (c.throughputSizes[1] / 4096 + 64);
  const many = c.exportsCount * 3;
  return Math.max(throughput, many, SHARE_PAGES, scalePages(c)) + 16_384;
}

/** Grant frames the exporter needs (512 entries each), with room for directories. */
export function exporterGrantFrames(c: BenchConfig): number {
  const entries = Math.max(3 * (c.throughputSizes[1] / 4096 + 128), c.exportsCount * 3, 4 * 8200, scalePages(c) + 1024);
  return Math.ceil(entries / 512) + 16;
}

/** Pages of the v1 exporter: the share figures and the scale curve only. */
export function v1ExporterPages(c: BenchConfig): number {
  return Math.max(SHARE_PAGES, scalePages(c)) + 16_384;
}

/** Grant frames of the v1 exporter. */
export function v1ExporterGrantFrames(c: BenchConfig): number {
  return Math.ceil(Math.max(4 * 8200, scalePages(c) + 1024) / 512) + 16;
}
