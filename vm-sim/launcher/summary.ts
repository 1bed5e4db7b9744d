/**
 * The human summary printed at the end of `hdmabuf run` (without --json).
 *
 *   frames handed off and verified   frames the render VM handed off / frames whose check passed in the compositor
 *   handoff latency                  handoff to handback, as the sender saw it (includes the receiver's check)
 *   bytes shared without copy        bytes of the buffers the importers mapped (the exporter's pages, no copy)
 *   bytes copied                     bytes the VMs sent in copy messages (ECHO, GNTTAB_COPY): 0 when nothing was copied
 *   leaks                            busy grants + mappings (HV_STATS before shutdown) + processes + shm files (after)
 */
import type { SampleSummary } from '../process/sim-stats.ts';
import { formatBytes, formatUs } from '../scenarios/units.ts';
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
  if (typeof s.bytesCopied === 'number') {
    lines.push(row('bytes copied', `${s.bytesCopied}${typeof s.wireBytes === 'number' ? `  (protocol traffic: ${formatBytes(s.wireBytes)} in ${String(s.wireFrames)} frames, largest ${formatBytes(s.largestFrame as number)})` : ''}`));
  }
  const ex = s.exports as { count: number; perSecond: number } | undefined;
  const un = s.unexports as { count: number; perSecond: number } | undefined;
  if (ex) lines.push(row('concurrent exports', `${ex.count} live at once, ${ex.perSecond} exports/s${un ? `; unexported and released at ${un.perSecond}/s` : ''}`));
  const big = s.bigBuffer as { pages: number; bytes: number; mapRequests: number; dataBatches: number } | undefined;
  if (big) lines.push(row('big buffer', `${formatBytes(big.bytes)} (${big.pages} pages) mapped with ${big.mapRequests} map requests (${big.dataBatches} data batches)`));
  if (typeof s.importers === 'number') lines.push(row('importers', `${s.importers}, each mapping the same pages`));
  const f = s.fences as { frames: number; framesPerSecond: number; tornFrames: number; implicitMisses: number; longestWaitMs: number } | undefined;
  if (f) lines.push(row('frames streamed with fences', `${f.frames} frames, ${f.framesPerSecond} frames/s, torn ${f.tornFrames}, implicit misses ${f.implicitMisses}, longest wait ${f.longestWaitMs} ms`));
  const mv = s.move as { moves: number; duringStream: number; moveMs: { median: number; max: number } } | undefined;
  if (mv) lines.push(row('page moves', `${mv.moves} (${mv.duringStream} while frames flowed), median ${mv.moveMs.median} ms, max ${mv.moveMs.max} ms`));
  const l = r.leaks;
  const total = l.busyGrants + l.mappings + l.processes + l.shmFiles;
  const unknown = Object.values(l).some((n) => n < 0);
  lines.push(row('leaks', `${unknown ? 'not all measured' : total}  (busy grants ${l.busyGrants}, mappings ${l.mappings}, processes ${l.processes}, shm files ${l.shmFiles})`));
  for (const c of r.checks.filter((x) => !x.ok)) lines.push(`  ✗ ${c.name}: ${c.detail}`);
  if (s.trace) lines.push(row('trace', `${(s.trace as { file: string }).file} (open in https://ui.perfetto.dev or DevTools' Performance panel)`));
  if (s.mermaid) lines.push(row('sequence diagram', (s.mermaid as { file: string }).file));
  if (s.report) lines.push(row('report', `${(s.report as { file: string }).file} (open in any browser)`));
  return lines;
}
