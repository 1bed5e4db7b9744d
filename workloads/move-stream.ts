/**
 * A frame stream through one shared buffer, for the proofs of dynamic
 * sharing (SPEC.md 11.8): the exporter VM writes numbered frames into its
 * buffer, the importer VM reads and checks each through its mapping, and
 * the exporter may move the buffer's pages at any time in between.
 *
 * Frame f is a checked frame of workloads/frame-pattern.ts (header:
 * magic, f = 1, 2, 3, ..., checksum, flags; flag 1 marks the last frame of
 * the stream), over the buffer's whole 32-bit words.
 *
 * Hand-off, in lockstep over one interdomain event channel (no data in
 * messages): the producer writes frame f once the consumer has sent f-1
 * notifications, then notifies; the consumer reads frame f once it has
 * received f notifications, then notifies. So a frame that is overwritten
 * before it is read, read twice, or read torn shows as a wrong number,
 * checksum or pattern.
 *
 * Both sides access the buffer only between begin_cpu_access and
 * end_cpu_access, so no move happens while they read or write (a move waits
 * for CPU accesses to end, and an access waits for a move in progress), and
 * both fetch their view again whenever the buffer's generation changed: a
 * move detaches the old one.
 */
import type { DmaBuf } from '../src/dmabuf/dma-buf.ts';
import type { EventChannels } from '../src/guest/event-channels.ts';
import { runFrameLoop } from './frame-loop.ts';
import { checkFrame, wordsOf, writeFrame, type FrameVerdict } from './frame-pattern.ts';

/** A buffer (or fd) with the view kept for it and the generation that view belongs to. */
export interface ViewHolder {
  buf: DmaBuf<unknown>;
  view: Uint8Array | undefined;
  /** Generation of `view` (a move makes it stale). */
  gen?: number;
}

/**
 * The holder's view, fetched again if a move made it stale: the new view is
 * taken before the stale one is dropped, so the vmap count never reaches 0
 * (no unmap and vmap mirrored to the exporter). Returns whether it refetched.
 */
export async function freshView(h: ViewHolder): Promise<{ view: Uint8Array; refetched: boolean }> {
  let refetched = false;
  while (!h.view || h.gen !== h.buf.generation) {
    const gen = h.buf.generation;
    const view = await h.buf.vmap();
    const stale = h.view;
    h.view = view;
    h.gen = gen;
    if (stale) {
      refetched = true;
      await h.buf.vunmap(stale);
    }
  }
  return { view: h.view, refetched };
}

/** A producer's controls and result. */
export interface ProducerRun {
  /** Asks the producer to make its next frame the last. */
  stop(): void;
  /** Resolves once the consumer has read the last frame. */
  readonly done: Promise<ProducerResult>;
}

/** What a producer did. */
export interface ProducerResult {
  frames: number;
  /** Times its view was stale (a move happened since the previous frame). */
  refetches: number;
  /** The buffer's generation at the end. */
  generation: number;
  ms: number;
}

/** Starts producing frames into `h` (the exporter's buffer), handing off over `port`; `frames` caps the count (0: until stopped). */
export function startProducer(h: ViewHolder, evtchn: EventChannels, port: number, frames = 0): ProducerRun {
  let stopping = false;
  const run = async (): Promise<ProducerResult> => {
    const t0 = performance.now();
    const base = evtchn.received(port);
    let refetches = 0;
    const loop = await runFrameLoop({ first: 1, frames: frames > 0 ? frames : Infinity }, async (f) => {
      // The consumer has read frame f-1.
      await evtchn.waitForEvents(port, base + f - 1);
      const last = stopping || (frames > 0 && f >= frames);
      await h.buf.beginCpuAccess('to_device');
      try {
        const { view, refetched } = await freshView(h);
        if (refetched) refetches++;
        writeFrame(wordsOf(view), f, last);
      } finally {
        await h.buf.endCpuAccess('to_device');
      }
      await evtchn.send(port);
      return last ? 'last' : undefined;
    });
    if (loop.error) throw loop.cause;
    await evtchn.waitForEvents(port, base + loop.frames);
    return { frames: loop.frames, refetches, generation: h.buf.generation, ms: performance.now() - t0 };
  };
  return { stop: () => { stopping = true; }, done: run() };
}

/** How a consumer pins while it streams. */
export interface ConsumerOptions {
  /** Pin at every frame number that is a multiple of this (0: never). */
  pinEvery?: number;
  /** Frames read while pinned, from the pinning frame on. */
  pinFrames?: number;
}

/** What a consumer saw. */
export interface ConsumerResult {
  frames: number;
  ok: number;
  bad: number;
  /** The first bad frames (number read, number expected, problem), at most 10. */
  badFrames: Array<{ expected: number; frame: number; problem: string }>;
  refetches: number;
  /** Distinct generations the frames were read at. */
  generationsSeen: number;
  generation: number;
  /** Pin windows, frames read pinned, and frames whose generation changed while pinned (must be 0). */
  pinWindows: number;
  pinnedFrames: number;
  pinViolations: number;
  ms: number;
}

/** Reads and checks every frame through `h` (the importer's fd) until the last one. */
export async function consumeFrames(h: ViewHolder, evtchn: EventChannels, port: number, opts: ConsumerOptions = {}): Promise<ConsumerResult> {
  const t0 = performance.now();
  const base = evtchn.received(port);
  const r: ConsumerResult = {
    frames: 0, ok: 0, bad: 0, badFrames: [], refetches: 0, generationsSeen: 0, generation: 0,
    pinWindows: 0, pinnedFrames: 0, pinViolations: 0, ms: 0,
  };
  const generations = new Set<number>();
  let pinnedUntil = 0;
  let pinGen = -1;
  const loop = await runFrameLoop({ first: 1, frames: Infinity }, async (f) => {
    await evtchn.waitForEvents(port, base + f);
    if (opts.pinEvery && pinnedUntil === 0 && f % opts.pinEvery === 0) {
      await h.buf.pin();
      pinGen = h.buf.generation;
      pinnedUntil = f + Math.max(1, opts.pinFrames ?? 1) - 1;
      r.pinWindows++;
    }
    let verdict: FrameVerdict;
    await h.buf.beginCpuAccess('from_device');
    try {
      const { view, refetched } = await freshView(h);
      if (refetched) r.refetches++;
      generations.add(h.buf.generation);
      verdict = checkFrame(wordsOf(view), f);
    } finally {
      await h.buf.endCpuAccess('from_device');
    }
    r.frames++;
    if (verdict.ok) r.ok++;
    else {
      r.bad++;
      if (r.badFrames.length < 10) r.badFrames.push({ expected: f, frame: verdict.frame, problem: verdict.problem ?? '?' });
    }
    if (pinnedUntil > 0) {
      r.pinnedFrames++;
      if (h.buf.generation !== pinGen) r.pinViolations++;
      if (f >= pinnedUntil || verdict.last) {
        pinnedUntil = 0;
        await h.buf.unpin();
      }
    }
    await evtchn.send(port);
    return verdict.last ? 'last' : undefined;
  });
  if (loop.error) throw loop.cause;
  r.generationsSeen = generations.size;
  r.generation = h.buf.generation;
  r.ms = performance.now() - t0;
  return r;
}
