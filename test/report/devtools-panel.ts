/**
 * Opens a trace in the Performance panel of the DevTools that ship inside
 * Chromium (devtools://devtools/bundled/trace_app.html, the panel's stand-alone
 * page), as a person does with "Load trace…", and reports what the panel
 * made of it: the flows it bound (it draws an arrow only for those) and its
 * tracks. showFlow() then zooms onto one message's flow and selects its last
 * slice, so that the panel draws the arrows from the sender through hv to the
 * receiver, for a screenshot (README "Opening a trace").
 *
 * The panel's modules are reached by dynamic import() from the page itself;
 * the names used (TimelinePanel.instance, loadFromFile, getFlameChart,
 * getParsedTraceForLayoutTests, TraceBounds) are those of Chromium's DevTools
 * frontend (chrome-devtools-frontend, front_end/panels/timeline).
 */
import type { Browser } from './chromium.ts';

/** What the panel shows of a loaded trace. */
export interface PanelView {
  /** Flows the panel bound to slices (each drawn as arrows between its slices). */
  flows: number;
  /** Its track groups, in the order it shows them (processes, then their threads). */
  tracks: string[];
}

const PANEL = `const T = await import('./panels/timeline/timeline.js'); const p = T.TimelinePanel.TimelinePanel.instance();`;

/** Evaluates `expression` (an async IIFE) until it returns a truthy value without throwing: the frontend starts asynchronously. */
async function until<T>(browser: Browser, expression: string, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const r = await browser.page('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }) as { result: { value: T }; exceptionDetails?: { exception?: { description?: string }; text?: string } };
    if (!r.exceptionDetails && r.result.value) return r.result.value;
    last = r.exceptionDetails?.exception?.description ?? r.exceptionDetails?.text ?? 'no value';
    if (Date.now() > deadline) throw new Error(`DevTools: ${what} did not happen in ${timeoutMs} ms: ${last}`);
    // Polling the page is the only way to see the frontend's state from outside; each try is one evaluation.
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Loads the trace (JSON text) into the Performance panel of Chromium's own DevTools; resolves once the panel has parsed it. */
export async function openInPerformancePanel(browser: Browser, traceJson: string, fileName: string): Promise<PanelView> {
  await browser.page('Runtime.enable');
  await browser.page('Page.navigate', { url: 'devtools://devtools/bundled/trace_app.html' });
  await until(browser, `(async () => { const UI = await import('./ui/legacy/legacy.js'); await UI.ViewManager.ViewManager.instance().showView('timeline'); return true; })()`, 'the Performance panel showing');
  // The file goes in as a File object, the same path as "Load trace…" and drag and drop take.
  await until(browser, `(async () => { ${PANEL} await p.loadFromFile(new File([${JSON.stringify(traceJson)}], ${JSON.stringify(fileName)}, { type: 'application/json' })); return true; })()`, 'loading the trace');
  return until<PanelView>(browser, `(async () => { ${PANEL} const pt = p.getParsedTraceForLayoutTests(); const groups = p.getFlameChart().getMainFlameChart().timelineData().groups; return pt && { flows: pt.Flows.flows.length, tracks: groups.map((g) => g.name) }; })()`, 'parsing the trace');
}

/**
 * Shows the `nth` flow whose slices are named like `name` (e.g. "SIM_FRAME_HANDOFF"): only the processes'
 * message threads (and the VMs' first rpc thread) are left, the window spans the flow, and its last slice
 * is selected, so the panel draws its arrows. Returns the flow's slices as [name, pid].
 */
export async function showFlow(browser: Browser, name: string, nth: number): Promise<Array<[string, number]>> {
  const flow = await until<Array<[string, number]>>(browser, `(async () => {
    ${PANEL}
    const TB = await import('./services/trace_bounds/trace_bounds.js');
    // The annotations sidebar takes a third of the width: closed with its own button, as a person would.
    const deep = (root) => { for (const el of root.querySelectorAll('*')) { if (el.tagName === 'BUTTON' && el.getAttribute('aria-label') === 'Hide sidebar') return el; const hit = el.shadowRoot && deep(el.shadowRoot); if (hit) return hit; } return null; };
    deep(document)?.click();
    // The chart takes the freed width on its next layout.
    await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
    const fc = p.getFlameChart();
    const chart = fc.getMainFlameChart();
    const groups = chart.timelineData().groups;
    const processOf = (i) => { while (groups[i].style?.nestingLevel !== 0) i--; return groups[i].name; };
    const keep = (i) => {
      const proc = processOf(i);
      if (proc.startsWith('launcher')) return false;
      const g = groups[i];
      return g.style?.nestingLevel === 0 || g.name.startsWith('messages') || (g.name.startsWith('rpc 01') && !proc.startsWith('hv'));
    };
    for (let i = groups.length - 1; i >= 0; i--) { if (keep(i)) chart.expandGroup(i, true); else chart.hideGroup(i); }
    const flows = p.getParsedTraceForLayoutTests().Flows.flows.filter((f) => f.every((e) => e.name.includes(${JSON.stringify(name)})));
    const f = flows[Math.min(${nth}, flows.length - 1)];
    if (!f) return null;
    const ts = f.map((e) => e.ts);
    const min = Math.min(...ts) - 1500, max = Math.max(...ts) + 3000;
    TB.TraceBounds.BoundsManager.instance().setTimelineVisibleWindow({ min, max, range: max - min });
    const last = f.reduce((a, e) => (e.ts > a.ts ? e : a));
    fc.setSelectionAndReveal(T.TimelineSelection.selectionFromEvent(last));
    return f.map((e) => [e.name, e.pid]);
  })()`, `showing a ${name} flow`);
  // The stand-alone page has no page to debug and says so in a dialog; Escape closes it.
  for (const type of ['keyDown', 'keyUp']) await browser.page('Input.dispatchKeyEvent', { type, key: 'Escape', code: 'Escape', windowsVirtualKeyCode: 27 });
  return flow;
}
