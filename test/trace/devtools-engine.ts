/**
 * Loads a Chrome trace with the trace engine of Chrome DevTools' Performance
 * panel (the npm package @paulirish/trace_engine, published from the
 * DevTools sources) and reports what the panel would draw of it: the flows
 * it bound to slices (an arrow is drawn only for those) and the threads it
 * found. Its FlowsHandler binds a flow event to the slice with the same ts,
 * pid, tid and cat.
 */
import type { ChromeEvent } from '../../vm-sim/trace/chrome.ts';

/** What the engine made of a trace. */
export interface DevtoolsView {
  /** Flows with at least two bound slices, each as its slices' [pid, ts]. */
  flows: Array<Array<{ pid: number; ts: number; name: string }>>;
}

interface EngineModule {
  TraceModel: { Model: { createWithAllHandlers(): EngineModel } };
}
interface EngineModel {
  parse(events: unknown[]): Promise<void>;
  parsedTrace(): { data?: EngineData } & EngineData;
}
interface EngineData {
  Flows?: { flows: Array<Array<{ pid: number; ts: number; name: string }>> };
}

/** Parses the events as the Performance panel does. */
export async function devtoolsView(events: readonly ChromeEvent[]): Promise<DevtoolsView> {
  // The engine reads window.DOMRect while loading (the package's README asks Node users to provide it).
  const g = globalThis as Record<string, unknown>;
  g.window ??= globalThis;
  g.DOMRect ??= class DOMRect {
    constructor(readonly x = 0, readonly y = 0, readonly width = 0, readonly height = 0) {}
  };
  const engine = (await import('@paulirish/trace_engine')) as unknown as EngineModule;
  const model = engine.TraceModel.Model.createWithAllHandlers();
  // The engine sorts and annotates events in place: give it copies.
  await model.parse(events.map((e) => ({ ...e })));
  const parsed = model.parsedTrace();
  const flows = (parsed.data ?? parsed).Flows?.flows ?? [];
  return { flows: flows.map((f) => f.map((e) => ({ pid: e.pid, ts: e.ts, name: e.name }))) };
}
