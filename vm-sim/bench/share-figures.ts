/**
 * Figures of sharing a buffer the first time, of mapping one, and of
 * fan-out:
 *   - first share (export, import, map) of a 4K buffer from high-order
 *     chunks against the copying baselines (baselines.ts): one warm memcpy,
 *     the routed one-way copy, the raw WebSocket one-way copy; of a 1080p
 *     buffer against the routed copy;
 *   - mapping an imported buffer (opening its first fd) against the addon
 *     mapping the same frames directly, and against the import floor (one
 *     round trip on the same connection plus that direct map);
 *   - a fully scattered 4K share against its floor;
 *   - the newest protocol version against v1, same figures, same run
 *     (trials alternated);
 *   - fan-out of one buffer to N importers against N shares one by one.
 */
import { median } from '../process/bench/sim-stats.ts';
import { grantWorkPerMap, readGrantStats, type GrantWork, type NotMeasured } from './backend-cost.ts';
import { CpuMeter } from './cpu.ts';
import { backendRoundTripTimes, memcpyTrial, roundTripTimes, roundTripWarmup, routedCopyTimes, wsCopyTimes } from './baselines.ts';
import { allocBuffer, alternatedShares, closeShare, drainEvents, freeBuffer, interleaved, medianShare, shareOnce, shareTimes, shareTrial, type BenchContext, type Pair } from './context.ts';
import { pairedSpread, result, type BenchResult } from './types.ts';

const FB_1080P = 1920 * 1080 * 4;
const FB_4K = 3840 * 2160 * 4;
const LONG = 600_000;

const ms = (us: number[]): number[] => us.map((x) => x / 1000);

/** The memcpy floor, as every figure against it names it. */
const MEMCPY_BASELINE = `one warm memcpy of the same ${FB_4K} bytes inside one process (TypedArray.set), trials interleaved with the shares`;

/**
 * Opening the first fd of an import, the direct map of the same frames, and
 * the bare round trips on the importer's connection: routed to the exporter
 * and back (ECHO) and to the backend alone (PING), µs each.
 */
interface MapTimes {
  imported: number[];
  /** Each right after an imported map; and the same maps back to back in a tight loop. */
  direct: number[];
  directWarm: number[];
  roundTrip: number[];
  backendRoundTrip: number[];
  frames: number;
  runs: number;
  version: number;
  /** The backend's own work per map during the map trials (HV_GRANT_STATS before and after), or why it is not known. */
  grantWork: GrantWork | NotMeasured;
}

async function mapTimes(ctx: BenchContext, pair: Pair, buf: number): Promise<MapTimes> {
  await drainEvents(pair.importer);
  const { hid } = await pair.exporter.call<{ hid: string }>('dmabuf.export', { buf, domid: pair.importer.domid }, LONG);
  await pair.importer.call('dmabuf.readEvent', { timeoutMs: 30_000 }, LONG);
  const before = await readGrantStats(ctx.run.control);
  const maps = await pair.importer.call<{ samples: Float64Array; direct: Float64Array; directWarm: Float64Array; frames: number; runs: number }>('bench.mapImported', { hid, iterations: ctx.config.mapIterations }, LONG);
  const after = await readGrantStats(ctx.run.control);
  // Only this importer maps meanwhile: the counters' difference is the backend's work for these maps.
  const grantWork = 'why' in before ? before : 'why' in after ? after : grantWorkPerMap(before.stats, after.stats, maps.samples.length);
  // EXPORT_FD is a round trip from the importer to the exporter through the backend: the same path.
  const iterations = ctx.config.quick ? 20 : 200;
  const roundTrip = await roundTripTimes(pair.importer, pair.exporter, iterations);
  // The map alone is a round trip to the backend.
  const backendRoundTrip = await backendRoundTripTimes(pair.importer, iterations);
  await pair.exporter.call('dmabuf.unexport', { hid }, LONG);
  await pair.exporter.call('dmabuf.waitReleased', { hid, timeoutMs: 60_000 }, LONG);
  return {
    imported: Array.from(maps.samples), direct: Array.from(maps.direct), directWarm: Array.from(maps.directWarm), roundTrip, backendRoundTrip, frames: maps.frames, runs: maps.runs,
    version: pair.version, grantWork,
  };
}

/** The floor of a first share in µs: the hops of one routed round trip (DMABUF_EXPORT there, the map's request and answer) plus the direct map (medians). */
function floorUs(m: MapTimes): number {
  return median(m.roundTrip) + median(m.direct);
}

/**
 * The import floor of opening the first fd in µs: the round trip that fd
 * waits for, plus the direct map (medians). In v1 it waits for the
 * exporter's answer (a routed round trip); in v2 only for its map, a round
 * trip to the backend (SPEC 11.2 rule 2).
 */
function importFloor(m: MapTimes): { us: number; roundTrip: number[]; path: string } {
  const [roundTrip, path] = m.version >= 2 ? [m.backendRoundTrip, 'importer -> hv (PING)'] : [m.roundTrip, 'importer -> hv -> exporter (ECHO)'];
  return { us: median(roundTrip) + median(m.direct), roundTrip, path };
}

/** What the backend itself spent on each map, beyond the floor's round trip (the import-floor row's note). */
function grantWorkNote(work: GrantWork | NotMeasured): string {
  if ('why' in work) return `the backend's own work per map not measured: ${work.why}`;
  return `beyond it, the backend's own work per map, timed in the backend (HV_GRANT_STATS before and after the trials): ${work.dirPages} directory pages read and ${work.entries} grant entries mapped in ${(work.us / 1000).toFixed(3)} ms`;
}

/** Map figures of one buffer: against the direct map, and against the import floor. */
function mapResults(m: MapTimes, label: string, id: string, target: number | null): BenchResult[] {
  const { version } = m;
  const value = median(m.imported) / 1000;
  const direct = median(m.direct) / 1000;
  const warm = median(m.directWarm) / 1000;
  const floor = importFloor(m);
  const what = `imported = opening the first fd of an import: ${version >= 2 ? 'GNTTAB_MAP_DIRECTORY round trip (EXPORT_FD sent right behind it, answered after the fd is returned: SPEC 11.2 rule 2)' : 'EXPORT_FD round trip, directory pages mapped and read, batched grant map'}, the frames mapped`;
  return [
    result({
      id, name: `map an imported ${label} buffer vs the addon mapping the same frames`, value, unit: 'ms', trials: m.imported.length, version,
      baseline: direct, baselineName: `nativeMem.mapPages of the same ${m.frames} frames (${m.runs} runs), in the importer, right after each imported map`,
      ratio: value / direct, ratioMeaning: 'imported / direct (lower is better)',
      ...(target !== null ? { target: { op: '<=', value: target, source: 'issue' } as const } : {}),
      note: `${what}; the same direct map in a tight warm loop of its own: ${warm.toFixed(3)} ms (imported / that: ${(value / warm).toFixed(1)}x)`,
      samples: { value: ms(m.imported), baseline: ms(m.direct), parts: { directWarm: ms(m.directWarm) } },
      ratioSpread: pairedSpread(m.imported, m.direct, 'value/baseline'),
    }),
    result({
      id: `${id}-vs-import-floor`, name: `map an imported ${label} buffer vs the import floor`, value, unit: 'ms', trials: m.imported.length, version,
      baseline: floor.us / 1000, baselineName: `import floor: one bare round trip ${floor.path} (${(median(floor.roundTrip) / 1000).toFixed(3)} ms) + the direct map of the same frames`,
      ratio: value / (floor.us / 1000), ratioMeaning: 'imported / floor (lower is better)',
      note: `reported: the least an import can cost is the one round trip its fd waits for, and mapping the frames; ${grantWorkNote(m.grantWork)}`,
      samples: { value: ms(m.imported), baseline: [], parts: { roundTrip: ms(floor.roundTrip), directMap: ms(m.direct), ...('us' in m.grantWork ? { backendGrantWork: [m.grantWork.us / 1000] } : {}) } },
    }),
  ];
}

/** The newest version's figure against v1's (same figure, same run). */
function versionResult(id: string, what: string, unit: string, newest: number[], v1: number[], ctx: BenchContext): BenchResult {
  const n = median(newest);
  const o = median(v1);
  return result({
    id: `v1-vs-newest-${id}`, name: `${what}: protocol v${ctx.newest.version} vs v1`, value: n, unit, trials: newest.length, version: ctx.newest.version,
    baseline: o, baselineName: `the same on a pair of VMs that offer only protocol v1, trials alternated`,
    ratio: o / n, ratioMeaning: `v1 / v${ctx.newest.version}: times faster than v1`,
    ...(ctx.newest.version === ctx.v1.version ? { note: 'both pairs speak v1: this build has no newer version' } : {}),
    samples: { value: newest, baseline: v1 },
    ratioSpread: pairedSpread(newest, v1, 'baseline/value'),
  });
}

/** The 4K buffer from high-order chunks: first share on both versions, the copying baselines, the map figures. */
async function fourK(ctx: BenchContext): Promise<BenchResult[]> {
  const { shareTrials, copyTrials } = ctx.config;
  const { newest, v1 } = ctx;
  ctx.log(`first share 4K, high-order chunks: v${newest.version}, v1 and one warm memcpy interleaved, ${shareTrials} trials each`);
  const a = await allocBuffer(ctx, FB_4K, false, newest.exporter);
  const b = await allocBuffer(ctx, FB_4K, false, v1.exporter);
  const [shareNew, shareV1, memcpyUs] = await interleaved(shareTrials, [shareTrial(ctx, newest, a.buf), shareTrial(ctx, v1, b.buf), memcpyTrial(newest.exporter, a.buf)]);
  const memcpy = ms(memcpyUs);
  ctx.log(`copying baselines: routed copy, raw WebSocket copy; ${copyTrials} trials each`);
  const routed = ms(await routedCopyTimes(newest, a.buf, copyTrials));
  const raw = ms(await wsCopyTimes(newest, a.buf, copyTrials));
  ctx.log('map an imported 4K buffer on both versions, the direct map and the import floor');
  const mapNew = await mapTimes(ctx, newest, a.buf);
  const mapV1 = await mapTimes(ctx, v1, b.buf);
  await freeBuffer(ctx, a.buf, newest.exporter);
  await freeBuffer(ctx, b.buf, v1.exporter);

  const share = ms(shareNew);
  const s = median(share);
  const name = `first share of a 4K buffer from high-order chunks (${a.runs} runs of pages; export, import, map)`;
  const common = { value: s, unit: 'ms', trials: share.length, version: newest.version, ratioMeaning: 'copy / share: times faster than copying' };
  return [
    result({
      ...common, id: 'first-share-4k-vs-memcpy', name: `${name} vs one warm memcpy`,
      baseline: median(memcpy), baselineName: MEMCPY_BASELINE,
      ratio: median(memcpy) / s, target: { op: '>=', value: 2, source: 'issue' },
      note: 'the memcpy floor: the least any design that copies the frame pays, without even crossing a process',
      samples: { value: share, baseline: memcpy },
      ratioSpread: pairedSpread(share, memcpy, 'baseline/value'),
    }),
    result({
      ...common, id: 'first-share-4k-vs-routed-copy', name: `${name} vs the routed copy`,
      baseline: median(routed), baselineName: `the same bytes sent once exporter VM -> hv -> importer VM as SIM_FRAME_COPY messages of <= 8 MiB (MessagePack), two in flight (the backend's send budget, SPEC 3.7), acknowledged`,
      ratio: median(routed) / s, target: { op: '>=', value: 20, source: 'issue' },
      note: 'the copying peer a user of this project would write: the same connections and routing as the share',
      samples: { value: share, baseline: routed },
    }),
    result({
      ...common, id: 'first-share-4k-vs-ws-copy', name: `${name} vs a raw WebSocket copy`,
      baseline: median(raw), baselineName: 'the same bytes sent once as one raw WebSocket binary frame, directly exporter VM -> importer VM (no MessagePack, unmasked), acknowledged',
      ratio: median(raw) / s,
      note: 'reported: the copying peer a user would write without this project',
      samples: { value: share, baseline: raw },
    }),
    ...mapResults(mapNew, '4K (high-order chunks)', 'map-4k', 10),
    versionResult('first-share-4k', 'first share of a 4K buffer from high-order chunks', 'ms', share, ms(shareV1), ctx),
    versionResult('map-4k', 'map an imported 4K buffer (high-order chunks)', 'ms', ms(mapNew.imported), ms(mapV1.imported), ctx),
  ];
}

/**
 * The two figures of the fast first share alone, on the newest pair: the
 * 4K first share against one warm memcpy, and the map of an imported 4K
 * buffer against the direct map (bench --only 4k: for profiling the path
 * without the copying baselines' traffic around it).
 */
export async function fourKNewest(ctx: BenchContext): Promise<BenchResult[]> {
  const { newest } = ctx;
  ctx.log(`first share 4K, high-order chunks, v${newest.version}: ${ctx.config.shareTrials} trials interleaved with one warm memcpy each, the map figures`);
  const a = await allocBuffer(ctx, FB_4K, false, newest.exporter);
  const [shareUs, memcpyUs] = await interleaved(ctx.config.shareTrials, [shareTrial(ctx, newest, a.buf), memcpyTrial(newest.exporter, a.buf)]);
  const [share, memcpy] = [ms(shareUs), ms(memcpyUs)];
  const map = await mapTimes(ctx, newest, a.buf);
  await freeBuffer(ctx, a.buf, newest.exporter);
  const s = median(share);
  return [
    result({
      id: 'first-share-4k-vs-memcpy', name: `first share of a 4K buffer from high-order chunks (${a.runs} runs of pages) vs one warm memcpy`,
      value: s, unit: 'ms', trials: share.length, version: newest.version,
      baseline: median(memcpy), baselineName: MEMCPY_BASELINE,
      ratio: median(memcpy) / s, ratioMeaning: 'copy / share: times faster than copying', target: { op: '>=', value: 2, source: 'issue' },
      samples: { value: share, baseline: memcpy },
      ratioSpread: pairedSpread(share, memcpy, 'baseline/value'),
    }),
    ...mapResults(map, '4K (high-order chunks)', 'map-4k', 10),
  ];
}

/**
 * First shares of the 4K buffer on the newest pair and nothing else (bench
 * --only share-4k: for CPU profiles of the share alone), each split at the
 * moment the importer read its NEW_IMPORT event: the export (grants,
 * directory, the routed DMABUF_EXPORT) and the import (EXPORT_FD,
 * GNTTAB_MAP_DIRECTORY, the mapping, the fd).
 */
export async function fourKShareOnly(ctx: BenchContext): Promise<BenchResult[]> {
  const { newest } = ctx;
  ctx.log(`first share 4K, high-order chunks, v${newest.version}: ${ctx.config.shareTrials} trials, nothing else`);
  const a = await allocBuffer(ctx, FB_4K, false, newest.exporter);
  await drainEvents(newest.importer);
  const total: number[] = [];
  const exportPart: number[] = [];
  // What the three processes spend per share on their main threads (the launcher's calls included): load inflates it far less than wall time.
  const pids = [newest.exporter.pid, ctx.run.hv.pid, newest.importer.pid];
  const cpu = new CpuMeter(pids);
  for (let t = -1; t < ctx.config.shareTrials; t++) {
    const s = t >= 0 ? await cpu.measure(() => shareOnce(ctx, a.buf, [newest.importer], newest.exporter)) : await shareOnce(ctx, a.buf, [newest.importer], newest.exporter);
    await closeShare(s, [newest.importer]);
    if (t >= 0) { total.push(s.us / 1000); exportPart.push(s.toEventUs / 1000); }
  }
  await freeBuffer(ctx, a.buf, newest.exporter);
  const importPart = total.map((x, i) => x - exportPart[i]!);
  const common = { unit: 'ms', trials: total.length, version: newest.version };
  const perShare = cpu.perOp(total.length);
  const cpuNote = perShare ? `main-thread CPU per share (exporter, hv, importer): ${perShare.join(', ')} µs` : 'main-thread CPU not measured (no /proc)';
  return [
    result({
      ...common, id: 'first-share-4k', name: `first share of a 4K buffer from high-order chunks (${a.runs} runs of pages)`, value: median(total), note: cpuNote,
      samples: { value: total, ...(perShare ? { parts: { cpuUsPerProcess: perShare } } : {}) },
    }),
    result({ ...common, id: 'first-share-4k-export-part', name: 'of which: start until the importer read NEW_IMPORT (grants, directory, routed DMABUF_EXPORT)', value: median(exportPart), samples: { value: exportPart } }),
    result({ ...common, id: 'first-share-4k-import-part', name: 'of which: NEW_IMPORT read until the fd\'s view is usable (EXPORT_FD, GNTTAB_MAP_DIRECTORY, mapping)', value: median(importPart), samples: { value: importPart } }),
  ];
}

/** The fully scattered 4K buffer: first share on both versions against the share floor. */
async function scattered4K(ctx: BenchContext): Promise<BenchResult[]> {
  const { shareTrials } = ctx.config;
  const { newest, v1 } = ctx;
  ctx.log(`first share 4K, fully scattered pages: v${newest.version} and v1 alternated, ${shareTrials} trials each, and the floor`);
  const a = await allocBuffer(ctx, FB_4K, true, newest.exporter);
  const b = await allocBuffer(ctx, FB_4K, true, v1.exporter);
  const [shareNew, shareV1] = await alternatedShares(ctx, { pair: newest, buf: a.buf }, { pair: v1, buf: b.buf }, shareTrials);
  const map = await mapTimes(ctx, newest, a.buf);
  await freeBuffer(ctx, a.buf, newest.exporter);
  await freeBuffer(ctx, b.buf, v1.exporter);
  const share = ms(shareNew);
  const value = median(share);
  const floor = floorUs(map) / 1000;
  return [
    result({
      id: 'first-share-4k-scattered', name: `first share of a fully scattered 4K buffer (${a.runs} runs: one mapping per page)`, value, unit: 'ms', trials: share.length, version: newest.version,
      baseline: floor, baselineName: 'share floor: one bare routed round trip importer -> hv -> exporter and back (the hops of DMABUF_EXPORT and of the map) + the addon mapping the same scattered frames directly',
      ratio: value / floor, ratioMeaning: 'share / floor (lower is better)', target: { op: '<=', value: 1.5, source: 'issue' },
      samples: { value: share, baseline: [], parts: { roundTrip: ms(map.roundTrip), directMap: ms(map.direct) } },
    }),
    ...mapResults(map, '4K (fully scattered)', 'map-4k-scattered', null),
    versionResult('first-share-4k-scattered', 'first share of a fully scattered 4K buffer', 'ms', share, ms(shareV1), ctx),
  ];
}

/** The 1080p buffer against the routed copy (reported). */
async function fullHd(ctx: BenchContext): Promise<BenchResult[]> {
  const { shareTrials, copyTrials } = ctx.config;
  ctx.log(`first share 1080p: ${shareTrials} trials, and the routed copy`);
  await drainEvents(ctx.importer);
  const a = await allocBuffer(ctx, FB_1080P);
  const share = ms(await shareTimes(ctx, a.buf, [ctx.importer], shareTrials));
  const routed = ms(await routedCopyTimes(ctx.newest, a.buf, copyTrials));
  await freeBuffer(ctx, a.buf);
  const s = median(share);
  return [result({
    id: 'first-share-1080p-vs-routed-copy', name: `first share of a 1080p buffer (${a.runs} runs of pages; export, import, map) vs the routed copy`, value: s, unit: 'ms', trials: share.length, version: ctx.newest.version,
    baseline: median(routed), baselineName: `the same ${FB_1080P} bytes sent once over the routed path (SIM_FRAME_COPY), acknowledged`,
    ratio: median(routed) / s, ratioMeaning: 'copy / share: times faster than copying',
    samples: { value: share, baseline: routed },
  })];
}

/** First shares, copying baselines, map figures, scattered floor, v1 against the newest version. */
export async function shareFigures(ctx: BenchContext): Promise<BenchResult[]> {
  return [...await fullHd(ctx), ...await fourK(ctx), ...await scattered4K(ctx)];
}

/** Fan-out of one 1080p buffer to every fan importer at once, against that many shares one by one. */
export async function fanOutFigure(ctx: BenchContext): Promise<BenchResult[]> {
  const n = ctx.fans.length;
  ctx.log(`fan-out to ${n} importers: ${ctx.config.fanOutTrials} trials, and one importer`);
  for (const f of ctx.fans) await drainEvents(f);
  const a = await allocBuffer(ctx, FB_1080P);
  const one = await medianShare(ctx, a.buf, [ctx.importer], ctx.config.fanOutTrials) / 1000;
  const times: number[] = [];
  for (let t = -1; t < ctx.config.fanOutTrials; t++) {
    const s = await shareOnce(ctx, a.buf, ctx.fans);
    await closeShare(s, ctx.fans);
    if (t >= 0) times.push(s.us);
  }
  await freeBuffer(ctx, a.buf);
  const all = median(times) / 1000;
  return [result({
    id: 'fan-out', name: `fan-out of a 1080p buffer to ${n} importers (all mapped)`, value: all, unit: 'ms', trials: ctx.config.fanOutTrials, version: ctx.newest.version,
    baseline: n * one, baselineName: `${n} x one first share (${one.toFixed(2)} ms each)`,
    ratio: all / (n * one), ratioMeaning: `fan-out / (${n} x one share): below 1, the importers worked in parallel`,
    note: 'reported only: the issue sets no target. All importers map through the one backend process, and the machine has only so many cores for its VMs',
    samples: { value: ms(times) },
  })];
}

/**
 * Bare routed round trips importer -> hv -> exporter and back (bench
 * --only round-trip: for CPU profiles of the path every import and handoff
 * pays), with each process's main-thread CPU per round trip.
 */
export async function roundTripOnly(ctx: BenchContext): Promise<BenchResult[]> {
  const { newest } = ctx;
  const iterations = ctx.config.quick ? 100 : 2000;
  ctx.log(`bare round trips importer -> hv -> exporter, v${newest.version}: ${iterations}`);
  const cpu = new CpuMeter([newest.exporter.pid, ctx.run.hv.pid, newest.importer.pid]);
  const rt = ms(await cpu.measure(() => roundTripTimes(newest.importer, newest.exporter, iterations)));
  // The warm-up round trips run inside the measured call too.
  const perRt = cpu.perOp(iterations + roundTripWarmup(iterations));
  return [result({
    id: 'round-trip', name: 'bare routed round trip importer -> hv -> exporter (ECHO, empty payload)', value: median(rt), unit: 'ms', trials: rt.length, version: newest.version,
    note: perRt ? `main-thread CPU per round trip (exporter, hv, importer): ${perRt.join(', ')} µs` : 'main-thread CPU not measured (no /proc)',
    samples: { value: rt, ...(perRt ? { parts: { cpuUsPerProcess: perRt } } : {}) },
  })];
}
