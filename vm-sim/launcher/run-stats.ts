/**
 * End-of-run statistics gathered from the live VMs (sim.stats) before
 * shutdown: what they sent in copies (ECHO payloads, GNTTAB_COPY), their
 * protocol traffic, and their handoff counters.
 */
import type { Run } from './run.ts';

/** What the VMs said. */
export interface VmTotals {
  /** Bytes sent in copy messages (ECHO, GNTTAB_COPY) by the VMs that could still answer. */
  bytesCopied: number;
  /** Protocol bytes in and out of those VMs. */
  wireBytes: number;
  wireFrames: number;
  largestFrame: number;
  /** Domains that could not answer (killed by the scenario). */
  notReporting: string[];
}

interface SimStats {
  copies: { echoBytes: number; grantCopyBytes: number };
  kernel: { wire: { bytesIn: number; bytesOut: number; framesIn: number; framesOut: number; largestFrame: number } };
}

/** Asks every live VM for its counters. */
export async function collectVmTotals(run: Run): Promise<VmTotals> {
  const totals: VmTotals = { bytesCopied: 0, wireBytes: 0, wireFrames: 0, largestFrame: 0, notReporting: [] };
  await Promise.all(run.vms.map(async (vm) => {
    if (!vm.alive) { totals.notReporting.push(vm.name); return; }
    try {
      const s = await vm.call<SimStats>('sim.stats', {}, 10_000);
      totals.bytesCopied += s.copies.echoBytes + s.copies.grantCopyBytes;
      totals.wireBytes += s.kernel.wire.bytesIn + s.kernel.wire.bytesOut;
      totals.wireFrames += s.kernel.wire.framesIn + s.kernel.wire.framesOut;
      totals.largestFrame = Math.max(totals.largestFrame, s.kernel.wire.largestFrame);
    } catch {
      totals.notReporting.push(vm.name);
    }
  }));
  totals.notReporting.sort();
  return totals;
}
