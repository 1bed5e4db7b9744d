/**
 * The human summary printed at the end of `hdmabuf run` (without --json).
 *
 *   frames handed off and verified   frames the render VM handed off / frames whose check passed in the compositor
 *   handoff latency                  handoff to handback, as the sender saw it (includes the receiver's check)
 *   bytes shared without copy        bytes of the buffers the importers mapped (the exporter's pages, no copy)
 *   bytes copied                     bytes the backend really moved: ECHO payloads and GNTTAB_COPY lengths, every domain (killed ones too)
 *   held by design                   what a live importer still mapped of a dead exporter at the snapshot (SPEC 11.4): not a leak
 *   leaks                            busy grants + mappings (HV_STATS before shutdown, less what is held by design)
 *                                    + processes that had to be killed + shm files left; "not measured" when unknown
 *   processes that died              each process that ended on its own during the run: which, how, when
 */
import type { SampleSummary } from '../process/bench/sim-stats.ts';
import { formatBytes, formatUs } from '../scenarios/units.ts';
import { describeProcessExit } from './exits.ts';
import type { RunResult } from './result.ts';

function row(label: string, value: string): string {
  return `  ${label.padEnd(34)} ${value}`;
}

/** The summary lines of a result. */
export function summaryLines(r: RunResult): string[] {
  const s = r.stats;
  const lines: string[] = [];
  const passed = r.checks.filter((c) => c.ok).length;
  lines.push('');
  lines.push(`${r.scenario}: ${r.ok ? 'ok' : 'FAILED'}  (${passed}/${r.checks.length} checks passed, ${((s.durationMs as number) / 1000).toFixed(1)} s, run ${String(s.runTag)})`);
  const h = s.handoff as { latencyUs: SampleSummary; checkUs: SampleSummary; framesPerSecond: number; check: string; buffers: number } | undefined;
  if (typeof s.framesHandedOff === 'number') {
    lines.push(row('frames handed off and verified', `${s.framesHandedOff} handed off, ${String(s.framesVerified)} verified${h ? ` (${h.check} check, ${h.buffers} buffers, ${h.framesPerSecond} frames/s)` : ''}`));
  }
  if (h) {
    lines.push(row('handoff latency', `p50 ${formatUs(h.latencyUs.p50)}, p99 ${formatUs(h.latencyUs.p99)} (round trip, incl. the receiver's check: p50 ${formatUs(h.checkUs.p50)})`));
  }
  if (typeof s.bytesShared === 'number') {
    const through = typeof s.bytesCheckedThroughMappings === 'number' ? `; ${formatBytes(s.bytesCheckedThroughMappings)} of frames read through the mappings` : '';
    lines.push(row('bytes shared without copy', `${formatBytes(s.bytesShared)} mapped by importers${through}`));
  }
  const notMeasured = (s.notMeasured ?? {}) as Record<string, string>;
  if (typeof s.bytesCopied === 'number') {
    const parts = Number(s.bytesCopied) > 0 ? ` (routed data ${formatBytes(s.routedBytes as number)}, GNTTAB_COPY ${formatBytes(s.grantCopyBytes as number)})` : '';
    lines.push(row('bytes copied', `${s.bytesCopied}${parts}${typeof s.wireBytes === 'number' ? `  (protocol traffic: ${formatBytes(s.wireBytes)} in ${String(s.wireFrames)} frames, largest ${formatBytes(s.largestFrame as number)})` : ''}`));
  } else if (notMeasured.bytesCopied) {
    lines.push(row('bytes copied', notMeasured.bytesCopied));
  }
  const ex = s.exports as { count: number; perSecond: number } | undefined;
  const un = s.unexports as { count: number; perSecond: number } | undefined;
  if (ex) lines.push(row('concurrent exports', `${ex.count} live at once, ${ex.perSecond} exports/s${un ? `; unexported and released at ${un.perSecond}/s` : ''}`));
  const big = s.bigBuffer as { pages: number; bytes: number; mapRequests: number; directoryMaps?: number; dataBatches: number } | undefined;
  if (big) lines.push(row('big buffer', `${formatBytes(big.bytes)} (${big.pages} pages) mapped with ${big.mapRequests} map request(s) (${big.directoryMaps ? 'one directory map, v2' : `${big.dataBatches} data batches`})`));
  if (typeof s.importers === 'number') lines.push(row('importers', `${s.importers}, each mapping the same pages`));
  const f = s.fences as { frames: number; framesPerSecond: number; tornFrames: number; implicitMisses: number; longestWaitMs: number } | undefined;
  if (f) lines.push(row('frames streamed with fences', `${f.frames} frames, ${f.framesPerSecond} frames/s, torn ${f.tornFrames}, implicit misses ${f.implicitMisses}, longest wait ${f.longestWaitMs} ms`));
  const mv = s.move as { moves: number; duringStream: number; moveMs: { median: number; max: number } } | undefined;
  if (mv) lines.push(row('page moves', `${mv.moves} (${mv.duringStream} while frames flowed), median ${mv.moveMs.median} ms, max ${mv.moveMs.max} ms`));
  const l = r.leaks;
  const total = l.busyGrants + l.mappings + l.processes + l.shmFiles;
  const unknown = Object.values(l).some((n) => n < 0);
  const fig = (n: number): string => (n < 0 ? 'not measured' : String(n));
  const held = s.heldByDesign as { busyGrants: number; mappings: number } | undefined;
  if (held && held.busyGrants + held.mappings > 0) {
    lines.push(row('held by design (not leaks)', `busy grants ${held.busyGrants}, mappings ${held.mappings} (a live importer still mapped a dead exporter's pages, SPEC 11.4)`));
  }
  const stopped = s.heldWhenStopped as { busyGrants: number; mappings: number } | undefined;
  if (stopped && stopped.busyGrants + stopped.mappings > 0) {
    lines.push(row('held when the run stopped', `busy grants ${stopped.busyGrants}, mappings ${stopped.mappings} (in use by the survivors, released by their shutdown; not leaks)`));
  }
  lines.push(row('leaks', `${unknown ? 'not all measured' : total}  (busy grants ${fig(l.busyGrants)}, mappings ${fig(l.mappings)}, processes ${fig(l.processes)}, shm files ${fig(l.shmFiles)})`));
  if (unknown && notMeasured['leaks.busyGrants']) lines.push(row('', notMeasured['leaks.busyGrants']));
  for (const e of (r.exits ?? []).filter((x) => x.cause === 'died')) lines.push(row('process died', describeProcessExit(e)));
  for (const c of r.checks.filter((x) => !x.ok)) lines.push(`  ✗ ${c.name}: ${c.detail}`);
  if (s.trace) lines.push(row('trace', `${(s.trace as { file: string }).file} (open in https://ui.perfetto.dev or DevTools' Performance panel)`));
  if (s.mermaid) lines.push(row('sequence diagram', (s.mermaid as { file: string }).file));
  if (s.report) lines.push(row('report', `${(s.report as { file: string }).file} (open in any browser)`));
  return lines;
}
