/**
 * What a VM samples while tracing: its kernel's counters (counters.ts) and,
 * when it has a hyper_dmabuf driver, the page layout of each of its exports
 * the first time it is seen and after each move (LayoutRecord), so that a
 * run report can draw where every shared buffer's pages were.
 */
import type { GuestKernel } from '../../src/guest/kernel.ts';
import { hidKey } from '../../src/hyper-dmabuf/hid.ts';
import type { HyperDmabuf } from '../../src/hyper-dmabuf/index.ts';
import type { VmContext } from '../process/commands/commands.ts';
import { nowUs } from './clock.ts';
import type { TraceCollector } from './collector.ts';
import { vmCounters } from './counters.ts';
import type { LayoutRecord } from './records.ts';

/** Most layouts one VM records (a run of 10,000 exports keeps the first ones). */
export const MAX_LAYOUTS = 64;

/** The sampler to give TraceCollector.sampleWith in a VM. */
export function vmSampler(kernel: GuestKernel, ctx: VmContext, collector: TraceCollector): () => Record<string, number> {
  const seen = new Set<string>();
  return () => {
    const driver = (ctx.state.get('dmabuf') as { driver?: HyperDmabuf } | undefined)?.driver;
    if (driver && seen.size < MAX_LAYOUTS) {
      for (const e of driver.exporter.entries()) {
        const key = `${hidKey(e.hid)}/${e.target}/${e.generation}`;
        if (seen.has(key) || seen.size >= MAX_LAYOUTS) continue;
        seen.add(key);
        collector.add(layoutOf(e));
      }
    }
    return vmCounters(kernel.stats());
  };
}

type ExportEntry = ReturnType<HyperDmabuf['exporter']['entries']> extends IterableIterator<infer E> ? E : never;

function layoutOf(e: ExportEntry): LayoutRecord {
  const frames = e.sgt.frames();
  const runs: Array<[number, number]> = [];
  for (let i = 0; i < frames.length;) {
    let j = i + 1;
    while (j < frames.length && frames[j] === frames[i]! + (j - i)) j++;
    runs.push([frames[i]!, j - i]);
    i = j;
  }
  return {
    k: 'l', pid: process.pid, ts: nowUs(), hid: `${e.hid.dom}:${e.hid.cnt}`, target: e.target, gen: e.generation,
    size: e.sgt.size, runs, dirFormat: e.directory.format, dirFrames: [...e.directory.frames],
  };
}
