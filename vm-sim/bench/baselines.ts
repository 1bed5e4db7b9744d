/**
 * The baselines a share is measured against, each run inside the VMs on
 * the buffer being shared (µs per trial):
 *   - memcpy: the bytes copied once inside one process, warm: the least any
 *     copying design pays;
 *   - routed copy: the bytes sent once from the exporter VM to the importer
 *     VM over the project's own routed path (SIM_FRAME_COPY, MessagePack,
 *     through the backend), acknowledged by a small reply;
 *   - raw WebSocket copy: the same bytes as one binary frame directly
 *     between the two VM processes, no MessagePack, acknowledged;
 *   - round trips: a bare ECHO without payload on the same connection,
 *     routed to the exporter, and a bare PING to the backend (the floors add
 *     them to mapping the frames directly; see share-figures).
 */
import type { VmHandle } from '../launcher/vm-handle.ts';
import type { Pair, Trial } from './context.ts';

const LONG = 600_000;

async function samplesOf(vm: VmHandle, cmd: string, args: Record<string, unknown>): Promise<number[]> {
  const r = await vm.call<{ samples: Float64Array }>(cmd, args, LONG);
  return Array.from(r.samples);
}

/**
 * One warm copy of the buffer's bytes inside the exporter's process, after
 * an untimed one: a trial to interleave with the shares it is the baseline of.
 */
export function memcpyTrial(exporter: VmHandle, buf: number): Trial {
  return async () => (await samplesOf(exporter, 'bench.memcpy', { buf, trials: 1, warmup: 1 }))[0]!;
}

/** The buffer's bytes sent once to the importer over the routed path, until the last acknowledgement. */
export function routedCopyTimes(pair: Pair, buf: number, trials: number): Promise<number[]> {
  return samplesOf(pair.exporter, 'bench.copyRouted', { dst: pair.importer.domid, buf, trials, warmup: 1 });
}

/** The buffer's bytes sent once to the importer as a raw WebSocket binary frame, until the acknowledgement. */
export async function wsCopyTimes(pair: Pair, buf: number, trials: number): Promise<number[]> {
  const { port } = await pair.exporter.call<{ port: number }>('bench.wsListen', {}, LONG);
  try {
    await pair.importer.call('bench.wsConnect', { port }, LONG);
    return await samplesOf(pair.exporter, 'bench.wsCopy', { buf, trials, warmup: 1 });
  } finally {
    await pair.importer.call('bench.wsClose', {}, LONG);
    await pair.exporter.call('bench.wsClose', {}, LONG);
  }
}

/** Bare round trips from `from` to `to` through the backend (ECHO, empty payload). */
export function roundTripTimes(from: VmHandle, to: VmHandle, iterations: number): Promise<number[]> {
  return samplesOf(from, 'bench.echo', { dst: to.domid, bytes: 0, iterations, warmup: roundTripWarmup(iterations) });
}

/** Bare round trips from `from` to the backend alone (PING). */
export function backendRoundTripTimes(from: VmHandle, iterations: number): Promise<number[]> {
  return samplesOf(from, 'bench.ping', { iterations, warmup: roundTripWarmup(iterations) });
}

/** The untimed round trips roundTripTimes runs before its `iterations` timed ones. */
export function roundTripWarmup(iterations: number): number {
  return Math.min(20, iterations);
}
