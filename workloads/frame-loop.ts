/**
 * The one frame-stream engine: the run loop every frame-streaming workload
 * steps through (the fence stream, the buffer stream, the move stream and
 * the simulator's render loop). A workload says what one frame is (its
 * step); the engine numbers the frames, keeps a window of hand-offs in
 * flight, and turns the first failure into a report instead of a throw or
 * a hang: a timeout, a fence error or a dead peer ends the run at the frame
 * it happened in.
 */

/** Why a run stopped early (carried by the report). */
export interface RunError {
  /** The frame being handled. */
  frame: number;
  /** The error's code (ERR_...). */
  code: string;
  /** The fence status, when a fence signalled an error. */
  status?: number;
  message: string;
  /** When, from the start of the run (ms). */
  afterMs: number;
}

/** Thrown by a step to stop the run at `frame` with a code. */
export class StopRun extends Error {
  constructor(readonly frame: number, readonly code: string, message: string, readonly status?: number, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The code of an error (its `code` if it is a string), else ERR_INTERNAL. */
export function codeOf(e: unknown): string {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : 'ERR_INTERNAL';
}

/**
 * Marks `p` as handled the moment it starts. A send kept in flight while
 * the loop goes on may reject long before the loop awaits it (the peer or
 * the backend died); left without a handler until then, the rejection is
 * "unhandled" and Node ends the whole VM process instead of failing the run.
 * Awaiting the returned promise still sees the rejection.
 */
export function handled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

/** Keeps a hand-off in flight: `what` names it in the error if it fails. */
export type SendInFlight = (sent: Promise<unknown>, what?: string) => void;

/** One frame of a workload. Returns 'last' when this frame ends the stream. */
export type FrameStep = (frame: number, send: SendInFlight) => Promise<'last' | void>;

/** How to run. */
export interface FrameLoopOptions {
  /** Number of the first frame. */
  first: number;
  /** Frames to handle at most (Infinity: until a step returns 'last'). */
  frames: number;
  /** Hand-offs in flight before the oldest is awaited (default 1). */
  window?: number;
  /** Called after each frame with the frames done so far. */
  onFrame?: (done: number) => void;
  /** On an error, wait for every hand-off still in flight before reporting (default: leave them, marked handled). */
  drainOnError?: boolean;
}

/** How a run ended. */
export interface FrameLoopResult {
  /** Frames fully handled. */
  frames: number;
  /** The frame number a next run continues with. */
  next: number;
  elapsedMs: number;
  error?: RunError;
  /** The error as thrown (the StopRun's cause if it had one), for callers that rethrow it. */
  cause?: unknown;
}

/** Runs `step` for frames first, first+1, ... as `options` say. */
export async function runFrameLoop(options: FrameLoopOptions, step: FrameStep): Promise<FrameLoopResult> {
  const window = Math.max(1, options.window ?? 1);
  const inFlight: Array<{ sent: Promise<unknown>; what: string }> = [];
  const send: SendInFlight = (sent, what = 'send') => { inFlight.push({ sent: handled(sent), what }); };
  const settle = async (frame: number): Promise<void> => {
    const { sent, what } = inFlight.shift()!;
    try {
      await sent;
    } catch (e) {
      throw new StopRun(frame, codeOf(e), `${what}: ${(e as Error).message}`, undefined, { cause: e });
    }
  };
  const t0 = performance.now();
  const first = options.first;
  const end = first + options.frames;
  let i = first;
  try {
    for (; i < end; i++) {
      const last = await step(i, send);
      options.onFrame?.(i - first + 1);
      while (inFlight.length >= window) await settle(i);
      if (last === 'last') {
        i++;
        break;
      }
    }
    while (inFlight.length > 0) await settle(i);
    return { frames: i - first, next: i, elapsedMs: performance.now() - t0 };
  } catch (e) {
    // Every send still in flight was marked handled when it started.
    if (options.drainOnError) await Promise.allSettled(inFlight.map((f) => f.sent));
    const stop = e instanceof StopRun ? e : new StopRun(i, codeOf(e), (e as Error).message, undefined, { cause: e });
    const error: RunError = { frame: stop.frame, code: stop.code, message: stop.message, afterMs: performance.now() - t0, ...(stop.status !== undefined ? { status: stop.status } : {}) };
    return { frames: i - first, next: i + 1, elapsedMs: performance.now() - t0, error, cause: stop.cause ?? e };
  }
}
