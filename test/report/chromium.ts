/**
 * Real headless Chromium driven over the DevTools protocol (a WebSocket,
 * with the project's `ws`), to load a page as a person's browser would:
 * console errors, uncaught exceptions and every network request are
 * recorded, the DOM can be queried, a screenshot taken.
 *
 * Chromium comes from the system (Debian's `chromium` package; .ci/run
 * installs it when missing); findChromium() says where, or why not.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';

/** The browser's path, or the reason there is none. */
export function findChromium(): { path: string } | { missing: string } {
  const env = process.env.HDMABUF_CHROMIUM;
  if (env) return existsSync(env) ? { path: env } : { missing: `HDMABUF_CHROMIUM=${env} does not exist` };
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) return { path: r.stdout.trim() };
  }
  return { missing: 'no chromium, chromium-browser or google-chrome on PATH (Debian: apt-get install chromium; .ci/run does it)' };
}

/** What happened while a page loaded. */
export interface PageLog {
  consoleErrors: string[];
  exceptions: string[];
  /** URLs requested (the page's own file included). */
  requests: string[];
}

interface Pending {
  resolve: (v: Record<string, unknown>) => void;
  reject: (e: Error) => void;
}

/** A running headless Chromium with one page. */
export class Browser {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners: Array<(method: string, params: Record<string, unknown>) => void> = [];
  private sessionId = '';

  private constructor(private readonly child: ChildProcess, private readonly ws: WebSocket, private readonly profile: string) {
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data)) as { id?: number; result?: Record<string, unknown>; error?: { message: string }; method?: string; params?: Record<string, unknown> };
      if (msg.id !== undefined) {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(msg.error.message));
        else p?.resolve(msg.result ?? {});
      } else if (msg.method) {
        for (const l of this.listeners) l(msg.method, msg.params ?? {});
      }
    });
  }

  /** Starts the browser (a fresh profile, no sandbox: tests run as root) and opens a blank page of the given size. */
  static async launch(path: string, width = 1200, height = 900): Promise<Browser> {
    const profile = mkdtempSync(join(tmpdir(), 'hdmabuf-chromium-'));
    const child = spawn(path, [
      '--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check',
      '--disable-extensions', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      `--user-data-dir=${profile}`, '--remote-debugging-port=0', `--window-size=${width},${height}`, 'about:blank',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let err = '';
        const timer = setTimeout(() => reject(new Error(`chromium did not start in 30 s: ${err.slice(-2000)}`)), 30_000);
        child.stderr!.on('data', (d: Buffer) => {
          err += d.toString();
          const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
          if (m) { clearTimeout(timer); resolve(m[1]!); }
        });
        child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`chromium exited (${code}): ${err.slice(-2000)}`)); });
      });
      const ws = new WebSocket(url, { perMessageDeflate: false });
      await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
      const b = new Browser(child, ws, profile);
      const { targetId } = await b.send('Target.createTarget', { url: 'about:blank' }) as { targetId: string };
      const { sessionId } = await b.send('Target.attachToTarget', { targetId, flatten: true }) as { sessionId: string };
      b.sessionId = sessionId;
      await b.page('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false });
      return b;
    } catch (e) {
      child.kill('SIGKILL');
      rmSync(profile, { recursive: true, force: true });
      throw e;
    }
  }

  private send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.pending.delete(id); reject(new Error(`${method}: no answer in 30 s`)); }, 30_000);
      this.pending.set(id, { resolve: (v) => { clearTimeout(timer); resolve(v); }, reject: (e) => { clearTimeout(timer); reject(e); } });
      this.ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  }

  /** A command to the page. */
  page(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.send(method, params, this.sessionId);
  }

  /** Loads `url` and waits for its load event; returns what the page logged and requested. */
  async load(url: string): Promise<PageLog> {
    const log: PageLog = { consoleErrors: [], exceptions: [], requests: [] };
    const listener = (method: string, p: Record<string, unknown>): void => {
      if (method === 'Runtime.consoleAPICalled' && (p.type === 'error' || p.type === 'assert')) log.consoleErrors.push(JSON.stringify(p.args));
      else if (method === 'Runtime.exceptionThrown') log.exceptions.push(JSON.stringify((p.exceptionDetails as { text?: string })?.text ?? p));
      else if (method === 'Log.entryAdded' && (p.entry as { level?: string })?.level === 'error') log.consoleErrors.push((p.entry as { text: string }).text);
      else if (method === 'Network.requestWillBeSent') log.requests.push((p.request as { url: string }).url);
    };
    this.listeners.push(listener);
    await this.page('Runtime.enable');
    await this.page('Log.enable');
    await this.page('Network.enable');
    await this.page('Page.enable');
    const loaded = new Promise<void>((resolve) => {
      this.listeners.push((method) => { if (method === 'Page.loadEventFired') resolve(); });
    });
    await this.page('Page.navigate', { url });
    await loaded;
    return log;
  }

  /** Evaluates an expression in the page; returns its value (JSON-serialisable). */
  async evaluate<T>(expression: string): Promise<T> {
    const r = await this.page('Runtime.evaluate', { expression, returnByValue: true }) as { result: { value: T }; exceptionDetails?: unknown };
    if (r.exceptionDetails) throw new Error(`evaluate ${expression}: ${JSON.stringify(r.exceptionDetails)}`);
    return r.result.value;
  }

  /** A PNG of the page (fullPage: the whole document, not just the viewport). */
  async screenshot(fullPage = false): Promise<Buffer> {
    const params: Record<string, unknown> = { format: 'png' };
    if (fullPage) {
      const { contentSize } = await this.page('Page.getLayoutMetrics') as { contentSize: { width: number; height: number } };
      params.clip = { x: 0, y: 0, width: contentSize.width, height: contentSize.height, scale: 1 };
      params.captureBeyondViewport = true;
    }
    const { data } = await this.page('Page.captureScreenshot', params) as { data: string };
    return Buffer.from(data, 'base64');
  }

  /** A PNG of the part of the page from the top of element `#id`, at most `height` pixels tall. */
  async screenshotFrom(id: string, height: number): Promise<Buffer> {
    const top = await this.evaluate<number>(`document.getElementById(${JSON.stringify(id)}).getBoundingClientRect().top + window.scrollY`);
    const { contentSize } = await this.page('Page.getLayoutMetrics') as { contentSize: { width: number; height: number } };
    const h = Math.min(height, contentSize.height - top);
    const { data } = await this.page('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true, clip: { x: 0, y: top, width: contentSize.width, height: h, scale: 1 } }) as { data: string };
    return Buffer.from(data, 'base64');
  }

  /** Closes the browser, waits for its exit and removes its profile. */
  async close(): Promise<void> {
    const exited = new Promise<void>((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) resolve();
      else this.child.once('exit', () => resolve());
    });
    try {
      await Promise.race([this.send('Browser.close'), exited]);
    } catch { /* killed below */ }
    this.ws.terminate();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    rmSync(this.profile, { recursive: true, force: true });
  }
}
