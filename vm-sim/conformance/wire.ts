/**
 * A raw protocol client for the conformance suite: one WebSocket, frames in
 * and out exactly as SPEC.md sections 3-4 define them, and nothing of this
 * project's client library (no HvClient, no RpcConnection), so what is
 * checked is the backend's wire behaviour only.
 *
 * Every frame the backend sends is checked on arrival: it must be a binary
 * frame that the reference codec (protocol/codec.ts: plain MessagePack,
 * envelope, declared type and kind, every body field) accepts, and an `evt`
 * must carry id 0. A frame that fails is recorded in `violations`, which the
 * file teardown asserts empty; it is never silently ignored.
 *
 * Replies (`res`/`err`) are matched to requests by id. Everything else
 * (events, requests routed to this domain, replies nobody waits for) goes to
 * an inbox that tests read with `next()`/`nextEvent()`/`nextRequest()`.
 * Waiting is event-driven; the only timers are failure deadlines, so a
 * backend that never answers fails the test with a message instead of
 * hanging it.
 */
import { Packr } from 'msgpackr';
import WebSocket from 'ws';
import { decodeFrame, encodeFrame, MAX_FRAME_BYTES, type Envelope } from '../../protocol/index.ts';

/** The environment variable that sets DEADLINE_MS (the command's --timeout-ms). */
export const TIMEOUT_ENV = 'HDMABUF_CONFORMANCE_TIMEOUT_MS';

/**
 * How long a check waits for a reply, an event or a close before it fails
 * (not a synchronisation delay; SPEC.md sets no reply time, so it is
 * configurable: 5 s unless HDMABUF_CONFORMANCE_TIMEOUT_MS says otherwise).
 */
export const DEADLINE_MS = deadlineFromEnv();

function deadlineFromEnv(): number {
  const text = process.env[TIMEOUT_ENV];
  const ms = text === undefined ? 5_000 : Number(text);
  if (!Number.isInteger(ms) || ms <= 0) throw new RangeError(`${TIMEOUT_ENV} must be a positive integer of milliseconds, not ${text}`);
  return ms;
}

/** Frames kept per connection for a failure's report: what was sent and what came back. */
const TRANSCRIPT_FRAMES = 8;

/** Every open client, so that a failed check can show the frames they exchanged last. */
const liveClients = new Set<WireClient>();

/** The last frames of every client opened so far in this process (oldest first), for a failure report. */
export function recentTranscript(): string[] {
  return [...liveClients].flatMap((c) => c.transcript.map((line) => `${c.label} ${line}`));
}

/** Forgets the transcripts (at the start of each check). */
export function clearTranscripts(): void {
  for (const c of liveClients) c.transcript.length = 0;
  for (const c of [...liveClients]) if (c.isClosed) liveClients.delete(c);
}

/** A short, readable form of a frame for a transcript. */
function describeFrame(bytes: Uint8Array | string): string {
  if (typeof bytes === 'string') return `text frame ${JSON.stringify(bytes.slice(0, 80))}`;
  const r = decodeFrame(bytes);
  if (r.ok) {
    const text = JSON.stringify(r.env, (_k, v: unknown) => (v instanceof Uint8Array ? `<${v.length} bytes>` : v));
    return text.length > 300 ? `${text.slice(0, 300)}…` : text;
  }
  const hex = Buffer.from(bytes.subarray(0, 48)).toString('hex');
  return `${bytes.length} bytes (${r.error.code}) ${hex}${bytes.length > 48 ? '…' : ''}`;
}

const rawPackr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false, bundleStrings: false, variableMapSize: true });

/** Packs any value as plain MessagePack without the codec's validation: for hostile frames. */
export function packRaw(value: unknown): Uint8Array {
  return rawPackr.pack(value);
}

/** How a connection ended. */
export interface CloseInfo { code: number; reason: string }

/** Options of a request. */
export interface RequestOptions {
  /** Envelope id (default: the next free one of this client). */
  id?: number;
  /** Envelope version (default: the negotiated one). */
  v?: number;
  src?: number;
  dst?: number;
}

/** An err reply or PROTOCOL_ERROR body. */
export interface ErrBody { code: string; message: string; field?: string; min?: number; max?: number; id?: number; type?: string }

type Waiter = { pred: (env: Envelope) => boolean; resolve: (env: Envelope) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };

/** A raw connection to the backend under test. */
export class WireClient {
  readonly label: string;
  readonly ws: WebSocket;
  /** Resolves when the socket has closed, with the close code the client saw. */
  readonly closed: Promise<CloseInfo>;
  /** Frames from the backend that broke SPEC.md sections 3-4 (asserted empty at teardown). */
  readonly violations: string[] = [];
  /** Negotiated version (set by hello()). */
  version = 1;
  /** The last frames sent (`->`) and received (`<-`), for a failure's report. */
  readonly transcript: string[] = [];
  /** The backend's maxBatch from the HELLO reply (SPEC 5: limits are read from the answers, never assumed). */
  maxBatch = 0;
  /** The backend's maxFrameBytes from the HELLO reply. */
  maxFrameBytes = 0;
  /** The domain this connection authenticated as, once HELLO succeeded. */
  domid: number | undefined;
  private closeInfo: CloseInfo | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (env: Envelope) => void; reject: (e: Error) => void; timer: NodeJS.Timeout; what: string }>();
  private readonly inbox: Envelope[] = [];
  private readonly waiters: Waiter[] = [];

  private constructor(ws: WebSocket, label: string) {
    this.ws = ws;
    this.label = label;
    this.closed = new Promise((resolve) => {
      ws.once('close', (code: number, reason: Buffer) => {
        this.closeInfo = { code, reason: reason.toString() };
        const gone = (what: string) => new Error(`${this.label}: connection closed (${code}) while waiting for ${what}`);
        for (const [id, p] of this.pending) { clearTimeout(p.timer); p.reject(gone(p.what)); this.pending.delete(id); }
        for (const w of this.waiters.splice(0)) { clearTimeout(w.timer); w.reject(gone('a frame')); }
        resolve(this.closeInfo);
      });
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.record(`<- ${describeFrame(isBinary ? data : data.toString())}`);
      this.onFrame(data, isBinary);
    });
    ws.on('error', () => undefined);
    liveClients.add(this);
  }

  private record(line: string): void {
    this.transcript.push(line);
    if (this.transcript.length > TRANSCRIPT_FRAMES) this.transcript.shift();
  }

  /** Opens a WebSocket to `url` (no per-message compression unless asked, SPEC 3.1). */
  static async open(url: string, label: string, opts: { perMessageDeflate?: boolean } = {}): Promise<WireClient> {
    const ws = new WebSocket(url, { perMessageDeflate: opts.perMessageDeflate ?? false, maxPayload: 2 * MAX_FRAME_BYTES });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new WireClient(ws, label);
  }

  /** Opens a connection and completes HELLO as `domid` (offering [1, opts.maxVersion ?? 1]); throws with the backend's error otherwise. */
  static async connect(url: string, domid: number, token: string, label = `d${domid}`, opts: { maxVersion?: number } = {}): Promise<WireClient> {
    const c = await WireClient.open(url, label);
    const reply = await c.hello(domid, token, opts.maxVersion !== undefined ? { maxVersion: opts.maxVersion } : {});
    if (reply.kind !== 'res') {
      c.terminate();
      const body = reply.body as unknown as ErrBody;
      throw Object.assign(new Error(`${label}: HELLO refused: ${body.code}: ${body.message}`), { code: body.code });
    }
    return c;
  }

  /**
   * connect() for a toolstack reconnecting right after closing its control
   * connection. The backend counts the old one live until it has read its
   * close frame (SPEC 6.1 rule 1); between the two, e.g. behind a proxy that
   * closes its own leg only after ours, HELLO gets ERR_ALREADY_CONNECTED and
   * the connection stays open, so HELLO is said again on it, after a short
   * growing pause (nothing announces the old connection's end), at most
   * `attempts` times.
   */
  static async reconnect(url: string, domid: number, token: string, label: string, opts: { maxVersion?: number; attempts?: number } = {}): Promise<WireClient> {
    const c = await WireClient.open(url, label);
    const attempts = opts.attempts ?? 12;
    for (let i = 1; ; i++) {
      const reply = await c.hello(domid, token, opts.maxVersion !== undefined ? { maxVersion: opts.maxVersion } : {});
      if (reply.kind === 'res') return c;
      const body = reply.body as unknown as ErrBody;
      if (body.code !== 'ERR_ALREADY_CONNECTED' || i >= attempts) {
        c.terminate();
        throw Object.assign(new Error(`${label}: HELLO refused (attempt ${i}): ${body.code}: ${body.message}`), { code: body.code });
      }
      await new Promise<void>((resolve) => { setTimeout(resolve, Math.min(5 * 2 ** i, 400)); });
    }
  }

  /** Sends HELLO and returns the reply; on success records the version and domain. */
  async hello(domid: number, token: string, opts: { minVersion?: number; maxVersion?: number; caps?: string[]; id?: number; v?: number } = {}): Promise<Envelope> {
    const reply = await this.request('HELLO', {
      minVersion: opts.minVersion ?? 1, maxVersion: opts.maxVersion ?? 1, domid, token, caps: opts.caps ?? ['gnttab.v1'],
    }, { ...(opts.id !== undefined ? { id: opts.id } : {}), v: opts.v ?? 1 });
    if (reply.kind === 'res') {
      const body = reply.body as { version: number; maxBatch: number; maxFrameBytes: number };
      this.version = body.version;
      this.maxBatch = body.maxBatch;
      this.maxFrameBytes = body.maxFrameBytes;
      this.domid = domid;
    }
    return reply;
  }

  /** True once the socket has closed. */
  get isClosed(): boolean {
    return this.closeInfo !== undefined;
  }

  /** Sends a well-formed envelope (encoded and validated by the reference codec). */
  send(env: Envelope): void {
    this.sendBytes(encodeFrame(env));
  }

  /** Sends bytes as one binary frame, or a string as one text frame. */
  sendBytes(bytes: Uint8Array | string): void {
    this.record(`-> ${describeFrame(bytes)}`);
    this.ws.send(bytes, { binary: typeof bytes !== 'string' });
  }

  /** Sends any value, packed without validation, as one binary frame. */
  sendRaw(value: unknown): void {
    this.sendBytes(packRaw(value));
  }

  /** A fresh request id not in flight. */
  allocId(): number {
    while (this.pending.has(this.nextId) || this.nextId === 0) this.nextId = (this.nextId + 1) >>> 0;
    return this.nextId++;
  }

  /** Resolves with the reply (`res` or `err`) whose id is `id`. */
  awaitReply(id: number, what: string): Promise<Envelope> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.label}: no reply to ${what} #${id} within ${DEADLINE_MS} ms`));
      }, DEADLINE_MS);
      this.pending.set(id, { resolve, reject, timer, what });
    });
  }

  /** Sends a request (validated by the codec) and resolves with its reply envelope, `res` or `err`. */
  request(type: string, body: Record<string, unknown>, opts: RequestOptions = {}): Promise<Envelope> {
    if (this.closeInfo) return Promise.reject(new Error(`${this.label}: ${type}: connection closed`));
    const id = opts.id ?? this.allocId();
    const reply = this.awaitReply(id, type);
    try {
      this.send({
        v: opts.v ?? this.version, kind: 'req', type, id, body,
        ...(opts.src !== undefined ? { src: opts.src } : {}), ...(opts.dst !== undefined ? { dst: opts.dst } : {}),
      });
    } catch (e) {
      // Not sent (the codec refused the body): no reply will come. Dropping its entry leaves `reply` unsettled for good.
      const p = this.pending.get(id);
      if (p) { clearTimeout(p.timer); this.pending.delete(id); }
      return Promise.reject(e);
    }
    return reply;
  }

  /** Sends a request packed raw (hostile or out-of-declaration) and resolves with its reply. */
  requestRaw(env: Record<string, unknown> & { id: number }, what = String(env.type)): Promise<Envelope> {
    const reply = this.awaitReply(env.id, what);
    this.sendRaw(env);
    return reply;
  }

  /** A request that must succeed: resolves with the `res` body, throws on `err`. */
  async call<R = Record<string, unknown>>(type: string, body: Record<string, unknown>, opts: RequestOptions = {}): Promise<R> {
    const reply = await this.request(type, body, opts);
    if (reply.kind !== 'res') {
      const e = reply.body as unknown as ErrBody;
      throw Object.assign(new Error(`${this.label}: ${type}: ${e.code}: ${e.message}`), { code: e.code });
    }
    return reply.body as R;
  }

  /** A request that must fail: resolves with the `err` envelope (fails if it succeeds). */
  async refused(type: string, body: Record<string, unknown>, opts: RequestOptions = {}): Promise<Envelope & { body: ErrBody }> {
    const reply = await this.request(type, body, opts);
    if (reply.kind !== 'err') throw new Error(`${this.label}: ${type} succeeded but should have been refused: ${JSON.stringify(reply.body)}`);
    return reply as Envelope & { body: ErrBody };
  }

  /** The next inbox frame matching `pred` (events, routed requests, unclaimed replies). */
  next(pred: (env: Envelope) => boolean = () => true, what = 'a frame'): Promise<Envelope> {
    const at = this.inbox.findIndex(pred);
    if (at >= 0) return Promise.resolve(this.inbox.splice(at, 1)[0]!);
    if (this.closeInfo) return Promise.reject(new Error(`${this.label}: closed (${this.closeInfo.code}) while waiting for ${what}`));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        pred, resolve, reject,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          reject(new Error(`${this.label}: no ${what} within ${DEADLINE_MS} ms`));
        }, DEADLINE_MS),
      };
      this.waiters.push(waiter);
    });
  }

  /** The next event of `type` whose body matches `pred`. */
  nextEvent<B = Record<string, unknown>>(type: string, pred: (body: B, env: Envelope) => boolean = () => true): Promise<Envelope & { body: B }> {
    return this.next((e) => e.kind === 'evt' && e.type === type && pred(e.body as B, e), `event ${type}`) as Promise<Envelope & { body: B }>;
  }

  /** The next PROTOCOL_ERROR event. */
  nextProtocolError(): Promise<Envelope & { body: ErrBody }> {
    return this.nextEvent<ErrBody>('PROTOCOL_ERROR');
  }

  /** The next request routed to this domain, of `type`. */
  nextRequest(type: string): Promise<Envelope> {
    return this.next((e) => e.kind === 'req' && e.type === type, `routed request ${type}`);
  }

  /** Drops unclaimed frames matching `pred` (e.g. events about an earlier domain whose id is now reused). */
  forget(pred: (env: Envelope) => boolean): void {
    for (let i = this.inbox.length - 1; i >= 0; i--) if (pred(this.inbox[i]!)) this.inbox.splice(i, 1);
  }

  /** Frames received and not claimed by anyone (inspect only). */
  unclaimed(): readonly Envelope[] {
    return this.inbox;
  }

  /** Close code, once closed; fails after the deadline. */
  closeCode(): Promise<number> {
    return withDeadline(this.closed.then((c) => c.code), `${this.label}: close`);
  }

  /** Graceful close (WebSocket closing handshake); resolves once closed. */
  async close(code = 1000): Promise<void> {
    if (!this.closeInfo) this.ws.close(code);
    await this.closeCode();
  }

  /** Forced close, as a killed process: the socket is dropped without a closing handshake. */
  terminate(): void {
    this.ws.terminate();
  }

  private onFrame(data: Buffer, isBinary: boolean): void {
    if (!isBinary) {
      this.violations.push(`${this.label}: text frame from the backend (SPEC 3.2): ${data.toString().slice(0, 80)}`);
      return;
    }
    const r = decodeFrame(data);
    if (!r.ok) {
      this.violations.push(`${this.label}: undecodable frame from the backend (${r.error.code}: ${r.error.message}): ${data.subarray(0, 64).toString('hex')}`);
      return;
    }
    const env = r.env;
    if (env.kind === 'evt' && env.id !== 0) this.violations.push(`${this.label}: ${env.type} event with id ${env.id} (SPEC 4: 0 on evt)`);
    if (env.kind === 'res' || env.kind === 'err') {
      const p = this.pending.get(env.id);
      if (p) {
        this.pending.delete(env.id);
        clearTimeout(p.timer);
        p.resolve(env);
        return;
      }
    }
    const w = this.waiters.findIndex((x) => x.pred(env));
    if (w >= 0) {
      const [waiter] = this.waiters.splice(w, 1);
      clearTimeout(waiter!.timer);
      waiter!.resolve(env);
      return;
    }
    this.inbox.push(env);
  }
}

/** Rejects if `p` does not settle within the deadline. */
export function withDeadline<T>(p: Promise<T>, what: string, ms = DEADLINE_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}
