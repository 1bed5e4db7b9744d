/**
 * One protocol connection over a WebSocket: frames in and out through the
 * codec, requests correlated with replies by id, events dispatched.
 *
 * Used by both ends: the backend holds one per domain, a guest holds one to
 * the backend. Many requests may be in flight at once. On close every pending
 * request is rejected with ERR_CLOSED naming its type and id; close() is
 * graceful and destroy() is forced, and both are idempotent.
 */
import { EventEmitter } from 'node:events';
import type WebSocket from 'ws';
import {
  encodeFrame, FrameDecoding, lookupMessage, ProtocolError, MAX_FRAME_BYTES,
  type DecodeResult, type Envelope, type ErrorBody, type ErrorCode, type EventDecl, type EventOf, type MessageDecl,
  type RequestDecl, type RequestOf, type ResponseOf,
} from '../../protocol/index.ts';
import { ConnectionMachine, type ConnectionState } from '../../protocol/machines/session.ts';
import { PROTOCOL_ERROR } from '../../protocol/messages/session.ts';

/** Connection states. */

/** Options for a connection. */
export interface RpcConnectionOptions {
  /** Label used in error messages and traces. */
  name: string;
  /** Protocol version to stamp on frames (updated after HELLO). */
  version?: number;
  /** Largest frame accepted (changeable later with setMaxFrameBytes). */
  maxFrameBytes?: number;
  /**
   * Send budget: while more than this many bytes are queued and unsent, the
   * connection's socket is not read (the peer is not draining what we send it,
   * so it may not make us queue more); reading resumes once the queue drains.
   * Default: none (the guest side).
   */
  sendBudgetBytes?: number;
  /**
   * Bytes an incoming request's handling may hold, counted against the send
   * budget from when it is read until its reply is queued (SPEC 3.7's work
   * reserve). Default: none.
   */
  workReserve?: (env: Envelope, decl: RequestDecl) => number;
  /** Default time a request waits for its reply. */
  requestTimeoutMs?: number;
  /**
   * Work per turn of the event loop on one incoming frame (SPEC 3.7, "work
   * per frame"): a frame is decoded and validated in steps of about this many
   * values, one step per turn, with every other connection served between
   * two steps; the connection's later frames wait, unread, until it is done.
   * Default: the whole frame at once (the guest side).
   */
  decodeSliceValues?: number;
}

/** An incoming request as handed to the request handler. */
export interface IncomingRequest {
  env: Envelope;
  decl: RequestDecl;
}

/**
 * Returned by a request handler that sends the reply itself later, through
 * sendEnvelope or replyError (the backend's router does, for routed requests
 * whose reply comes from another domain and must carry that domain as `src`).
 */
export const REPLY_DEFERRED: unique symbol = Symbol('REPLY_DEFERRED');

/** Answers an incoming request with a response body, or throws a ProtocolError, or returns REPLY_DEFERRED. */
export type RequestHandler = (req: IncomingRequest) =>
  Promise<Record<string, unknown> | typeof REPLY_DEFERRED> | Record<string, unknown> | typeof REPLY_DEFERRED;

/** Observes every frame sent or received (tracing). */
export type FrameObserver = (direction: 'in' | 'out', env: Envelope, bytes: number) => void;

interface Pending {
  type: string;
  dst: number | undefined;
  resolve: (body: Record<string, unknown>) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

/** An error reply from the peer, with its stable code. */
export class RemoteError extends ProtocolError {
  constructor(body: ErrorBody, type: string, id: number) {
    super(body.code as ErrorCode, `${type} #${id}: ${body.code}: ${body.message}`, body.field, { min: body.min, max: body.max });
    this.name = 'RemoteError';
  }
}

/**
 * A request/response/event connection.
 *
 * Events: 'event' (env, decl), 'protocolError' (ProtocolError, partial),
 * 'close' (code, reason).
 */
export class RpcConnection extends EventEmitter {
  readonly name: string;
  version: number;
  /** Lifecycle (a declared machine: protocol/machines/session.ts); changes only through its transition table. */
  readonly lifecycle = ConnectionMachine.start();
  private readonly ws: WebSocket;
  private maxFrameBytes: number;
  private readonly sendBudgetBytes: number;
  /** Requests read and not yet answered by our handler (async handlers still running). */
  private handling = 0;
  private readingPaused = false;
  /** True while the socket is paused, for the send budget or for a frame being decoded in steps. */
  private socketPaused = false;
  private readonly decodeSliceValues: number;
  /** The frame being decoded in steps, if any. */
  private decoding: FrameDecoding | undefined;
  /** Frames that arrived while another was being decoded in steps, in order. */
  private readonly inbox: Array<{ data: Buffer; isBinary: boolean }> = [];
  private inboxScheduled = false;
  /** Sum of the work reserves of the requests being handled. */
  private reserved = 0;
  private readonly workReserve: ((env: Envelope, decl: RequestDecl) => number) | undefined;
  private readonly requestTimeoutMs: number;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private handler: RequestHandler | undefined;
  private observer: FrameObserver | undefined;
  /** Resolves once the socket has closed. */
  readonly closed: Promise<void>;

  /** open, closing or closed. */
  get state(): ConnectionState {
    return this.lifecycle.state;
  }

  /**
   * True once the socket has left OPEN, e.g. the peer's close frame has been
   * read (ws answers it at once), before the socket's close event: a peer
   * that closed and saw our answer knows this connection is over (SPEC 6.1 rule 1).
   */
  get peerClosed(): boolean {
    return this.ws.readyState !== this.ws.OPEN;
  }

  constructor(ws: WebSocket, options: RpcConnectionOptions) {
    super();
    this.ws = ws;
    this.name = options.name;
    this.version = options.version ?? 1;
    this.maxFrameBytes = options.maxFrameBytes ?? MAX_FRAME_BYTES;
    this.sendBudgetBytes = options.sendBudgetBytes ?? Infinity;
    this.workReserve = options.workReserve;
    this.decodeSliceValues = options.decodeSliceValues ?? Infinity;
    this.applyFrameLimit();
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    ws.binaryType = 'nodebuffer';
    this.closed = new Promise((resolve) => {
      ws.once('close', (code: number, reason: Buffer) => {
        this.lifecycle.apply('socket-closed');
        // Nothing more of this connection is decoded or handled.
        this.decoding = undefined;
        this.inbox.length = 0;
        this.rejectAllPending();
        this.emit('close', code, reason.toString());
        resolve();
      });
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => this.onFrame(data, isBinary));
    // A socket error is always followed by 'close'; swallow it here so it never crashes the process.
    ws.on('error', () => undefined);
  }

  /** Installs the handler for incoming requests (one per connection). */
  onRequest(handler: RequestHandler): void {
    this.handler = handler;
  }

  /** Installs an observer of every frame (for traces). */
  observe(observer: FrameObserver | undefined): void {
    this.observer = observer;
  }

  /** Bytes queued in the socket and not yet sent. */
  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  /** Number of requests awaiting a reply. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Number of incoming requests whose handler has not answered yet. */
  get handlingCount(): number {
    return this.handling;
  }

  /** True while reading is paused because the peer does not drain (over the send budget). */
  get isReadingPaused(): boolean {
    return this.readingPaused;
  }

  /**
   * Changes the largest frame accepted, for frames not yet begun (the backend
   * accepts only a HELLO-sized frame before HELLO). The WebSocket layer
   * refuses a larger frame from its header, before buffering it, with 1009.
   */
  setMaxFrameBytes(bytes: number): void {
    this.maxFrameBytes = bytes;
    this.applyFrameLimit();
  }

  private applyFrameLimit(): void {
    // ws reads its limit from the receiver on every frame header; it offers no public setter.
    const receiver = (this.ws as unknown as { _receiver?: { _maxPayload?: number } })._receiver;
    if (receiver && typeof receiver._maxPayload === 'number') receiver._maxPayload = this.maxFrameBytes;
  }

  /** Sends a request and resolves with the response body; rejects with RemoteError on an err reply. */
  request<D extends RequestDecl>(decl: D, body: RequestOf<D>, opts: { dst?: number; timeoutMs?: number } = {}): Promise<ResponseOf<D>> {
    return this.requestRaw(decl.type, body as Record<string, unknown>, opts) as Promise<ResponseOf<D>>;
  }

  /** Sends a request by type name (for routing and tests). */
  requestRaw(type: string, body: Record<string, unknown>, opts: { dst?: number; timeoutMs?: number; src?: number } = {}): Promise<Record<string, unknown>> {
    if (this.state !== 'open') return Promise.reject(new ProtocolError('ERR_CLOSED', `${this.name}: ${type}: connection is ${this.state}`));
    const id = this.allocateId();
    return new Promise((resolve, reject) => {
      const timeoutMs = opts.timeoutMs ?? this.requestTimeoutMs;
      const entry: Pending = { type, dst: opts.dst, resolve, reject, timer: undefined };
      if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
        entry.timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new ProtocolError('ERR_TIMEOUT', `${this.name}: ${type} #${id}: no reply within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.pending.set(id, entry);
      try {
        this.sendEnvelope({ v: this.version, kind: 'req', type, id, body, ...(opts.dst !== undefined ? { dst: opts.dst } : {}), ...(opts.src !== undefined ? { src: opts.src } : {}) });
      } catch (e) {
        this.settle(id);
        reject(e);
      }
    });
  }

  /** Sends an event. */
  notify<D extends EventDecl>(decl: D, body: EventOf<D>, opts: { dst?: number; src?: number } = {}): void {
    this.sendEnvelope({ v: this.version, kind: 'evt', type: decl.type, id: 0, body: body as Record<string, unknown>, ...opts });
  }

  /** Sends an already-formed envelope (the backend uses this to forward routed frames). Throws on a bad value. */
  sendEnvelope(env: Envelope): void {
    if (this.state !== 'open') throw new ProtocolError('ERR_CLOSED', `${this.name}: cannot send ${env.type}: connection is ${this.state}`);
    const bytes = encodeFrame(env);
    this.observer?.('out', env, bytes.byteLength);
    this.sendFrame(bytes);
  }

  /** Bytes held against the send budget: unsent bytes plus the work reserves of the requests being handled. */
  private get committed(): number {
    return this.ws.bufferedAmount + this.reserved;
  }

  /**
   * Hands one frame to the socket and applies the send budget: over it,
   * stop reading; the write callback of a frame sent in the upper half of
   * the budget resumes reading once the queue is below half (frames are
   * written in order, so the last one's callback sees the queue drained).
   */
  private sendFrame(bytes: Uint8Array): void {
    if (this.sendBudgetBytes === Infinity) {
      this.ws.send(bytes, { binary: true });
      return;
    }
    const watch = this.committed + bytes.byteLength > this.sendBudgetBytes / 2;
    this.ws.send(bytes, { binary: true }, watch ? () => this.maybeResume() : undefined);
    this.maybePause();
  }

  private maybePause(): void {
    if (!this.readingPaused && this.committed > this.sendBudgetBytes && this.state === 'open') {
      this.readingPaused = true;
      this.applyReading();
      this.emit('paused', this.committed);
    }
  }

  private maybeResume(): void {
    if (!this.readingPaused || this.committed > this.sendBudgetBytes / 2 || this.state !== 'open') return;
    this.readingPaused = false;
    this.applyReading();
    this.emit('resumed');
  }

  /** The socket is read unless the send budget is exceeded or a frame is being decoded in steps (or waits behind one). */
  private applyReading(): void {
    const pause = this.state === 'open' && (this.readingPaused || this.decoding !== undefined || this.inbox.length > 0);
    if (pause === this.socketPaused) return;
    this.socketPaused = pause;
    if (pause) this.ws.pause();
    else this.ws.resume();
  }

  /** Sends raw bytes as one binary frame (hostile-input tests). */
  sendBytes(bytes: Uint8Array): void {
    if (this.state === 'open') this.sendFrame(bytes);
  }

  /** Sends an err reply to a request. */
  replyError(env: Pick<Envelope, 'type' | 'id' | 'src'>, error: ProtocolError): void {
    const body: Record<string, unknown> = { code: error.code, message: error.message.slice(0, 1024) };
    if (error.field !== undefined) body.field = error.field.slice(0, 256);
    if (typeof error.extra?.min === 'number') body.min = error.extra.min;
    if (typeof error.extra?.max === 'number') body.max = error.extra.max;
    this.sendSafely({ v: this.version, kind: 'err', type: env.type, id: env.id, body, ...(env.src !== undefined ? { dst: env.src } : {}) });
  }

  /** Graceful close: the WebSocket closing handshake, with a forced close if the peer does not answer. */
  close(code = 1000, reason = ''): Promise<void> {
    if (this.state === 'open') {
      this.lifecycle.apply('close');
      this.ws.close(code, reason);
      const force = setTimeout(() => this.ws.terminate(), 2000);
      force.unref();
      void this.closed.then(() => clearTimeout(force));
    }
    return this.closed;
  }

  /** Forced close: drops the socket at once. */
  destroy(): Promise<void> {
    if (this.state !== 'closed') {
      if (this.lifecycle.allows('close')) this.lifecycle.apply('close');
      this.ws.terminate();
    }
    return this.closed;
  }

  private allocateId(): number {
    // Skip 0 (events) and ids still in flight after wraparound.
    do {
      this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    } while (this.pending.has(this.nextId));
    return this.nextId;
  }

  private settle(id: number): Pending | undefined {
    const entry = this.pending.get(id);
    if (!entry) return undefined;
    this.pending.delete(id);
    if (entry.timer) clearTimeout(entry.timer);
    return entry;
  }

  private rejectAllPending(): void {
    for (const [id, entry] of [...this.pending]) {
      this.settle(id);
      entry.reject(new ProtocolError('ERR_CLOSED', `${this.name}: ${entry.type} #${id}: connection closed before the reply`));
    }
  }

  private sendSafely(env: Envelope): void {
    try {
      this.sendEnvelope(env);
    } catch {
      // The connection closed underneath, or the reply itself was invalid: nothing more to say.
    }
  }

  private onFrame(data: Buffer, isBinary: boolean): void {
    // Frames are handled in the order they arrived: behind a frame being decoded in steps, they wait.
    if (this.decoding !== undefined || this.inbox.length > 0) {
      this.inbox.push({ data, isBinary });
      this.applyReading();
      return;
    }
    this.receive(data, isBinary);
  }

  /** One frame: checked, then decoded at once or, when larger than one step, over several turns. */
  private receive(data: Buffer, isBinary: boolean): void {
    if (!isBinary) {
      this.reportProtocolError(new ProtocolError('ERR_MALFORMED', 'text frames are not part of the protocol; send binary frames'), {});
      return;
    }
    if (data.byteLength > this.maxFrameBytes) {
      // The WebSocket layer normally refuses it from the header; never decode it (SPEC 3.4).
      this.emit('protocolError', new ProtocolError('ERR_FRAME_TOO_LARGE', `frame of ${data.byteLength} bytes exceeds ${this.maxFrameBytes}`), {});
      this.ws.close(1009, 'ERR_FRAME_TOO_LARGE');
      return;
    }
    const decoding = new FrameDecoding(data, this.maxFrameBytes);
    const result = decoding.step(this.decodeSliceValues);
    if (result) {
      this.deliver(result, data.byteLength);
      return;
    }
    this.decoding = decoding;
    this.applyReading();
    setImmediate(() => this.continueDecoding(decoding, data.byteLength));
  }

  /** The next step of a frame being decoded in steps, one per turn of the event loop (SPEC 3.7). */
  private continueDecoding(decoding: FrameDecoding, bytes: number): void {
    if (this.decoding !== decoding) return; // closed meanwhile
    const result = decoding.step(this.decodeSliceValues);
    if (!result) {
      setImmediate(() => this.continueDecoding(decoding, bytes));
      return;
    }
    this.decoding = undefined;
    this.deliver(result, bytes);
    this.scheduleInbox();
    this.applyReading();
  }

  /** Frames that waited behind a frame decoded in steps: one per turn, as the WebSocket delivers them. */
  private scheduleInbox(): void {
    if (this.inboxScheduled || this.inbox.length === 0) return;
    this.inboxScheduled = true;
    setImmediate(() => {
      this.inboxScheduled = false;
      if (this.decoding !== undefined) return;
      const next = this.inbox.shift();
      if (next) this.receive(next.data, next.isBinary);
      if (this.decoding === undefined) this.scheduleInbox();
      this.applyReading();
    });
  }

  private deliver(result: DecodeResult, bytes: number): void {
    if (!result.ok) {
      this.reportProtocolError(result.error, result.partial);
      return;
    }
    const { env, decl } = result;
    this.observer?.('in', env, bytes);
    this.emit('frame', env, decl);
    switch (env.kind) {
      case 'req': void this.dispatchRequest(env, decl as RequestDecl); break;
      case 'res':
      case 'err': this.dispatchReply(env); break;
      case 'evt': this.emit('event', env, decl); break;
    }
  }

  /**
   * Answers a bad frame (SPEC.md 4): an err reply if it was a request (kind
   * `req`) of a type declared as a request, with a readable id, whatever
   * check failed (so the requester gets its one reply); PROTOCOL_ERROR
   * otherwise.
   */
  private reportProtocolError(error: ProtocolError, partial: { kind?: string; type?: string; id?: number }): void {
    this.emit('protocolError', error, partial);
    const replyable = partial.kind === 'req' && partial.id !== undefined && partial.type !== undefined
      && lookupMessage(partial.type, this.version)?.kind === 'request';
    if (replyable) {
      this.replyError({ type: partial.type!, id: partial.id! }, error);
      return;
    }
    const body: Record<string, unknown> = { code: error.code, message: error.message.slice(0, 1024) };
    if (error.field !== undefined) body.field = error.field.slice(0, 256);
    if (partial.id !== undefined) body.id = partial.id;
    if (partial.type !== undefined) body.type = partial.type.slice(0, 64);
    this.sendSafely({ v: this.version, kind: 'evt', type: PROTOCOL_ERROR.type, id: 0, body });
  }

  /**
   * Runs the handler and answers. A handler's ProtocolError is the
   * requester's answer; anything else it throws, and a reply of ours that
   * fails its own declaration, is our failure: the requester gets
   * ERR_INTERNAL (SPEC 6.1 rule 9) and 'internalError' is emitted, never the
   * validation error as if the request had been bad. The request's work
   * reserve counts against the send budget until its reply is queued.
   */
  private async dispatchRequest(env: Envelope, decl: RequestDecl): Promise<void> {
    const reserve = this.sendBudgetBytes === Infinity ? 0 : this.workReserve?.(env, decl) ?? 0;
    this.reserved += reserve;
    if (reserve > 0) this.maybePause();
    try {
      await this.handleRequest(env, decl);
    } finally {
      this.reserved -= reserve;
      if (reserve > 0) this.maybeResume();
    }
  }

  private async handleRequest(env: Envelope, decl: RequestDecl): Promise<void> {
    this.handling++;
    let body: Record<string, unknown> | typeof REPLY_DEFERRED;
    try {
      if (!this.handler) throw new ProtocolError('ERR_WRONG_DIRECTION', `${this.name} does not accept requests`);
      body = await this.handler({ env, decl });
    } catch (e) {
      const error = e instanceof ProtocolError ? e : new ProtocolError('ERR_INTERNAL', `${env.type}: ${(e as Error)?.message ?? String(e)}`);
      if (!(e instanceof ProtocolError)) this.emit('internalError', e, env);
      this.replyError(env, error);
      return;
    } finally {
      this.handling--;
    }
    if (body === REPLY_DEFERRED || this.state !== 'open') return;
    const reply: Envelope = { v: this.version, kind: 'res', type: env.type, id: env.id, body, ...(env.src !== undefined ? { dst: env.src } : {}) };
    let bytes: Uint8Array;
    try {
      bytes = encodeFrame(reply);
    } catch (e) {
      this.emit('internalError', e, env);
      this.replyError(env, new ProtocolError('ERR_INTERNAL', `${env.type}: our reply failed its declaration: ${(e as Error)?.message ?? String(e)}`));
      return;
    }
    this.observer?.('out', reply, bytes.byteLength);
    this.sendFrame(bytes);
  }

  private dispatchReply(env: Envelope): void {
    const entry = this.pending.get(env.id);
    // A reply must come from where the request went: the backend (no src) or the routed peer.
    // The backend may also refuse a routed request itself (ERR_NO_SUCH_DOMAIN, ERR_PEER_GONE, ...):
    // an err without src can only come from the backend, which stamps src on everything it routes.
    const fromWhereItWent = entry !== undefined && (entry.dst === env.src || (env.kind === 'err' && env.src === undefined));
    if (!entry || entry.type !== env.type || !fromWhereItWent) {
      this.emit('strayReply', env);
      return;
    }
    this.settle(env.id);
    if (env.kind === 'res') entry.resolve(env.body);
    else entry.reject(new RemoteError(env.body as unknown as ErrorBody, env.type, env.id));
  }
}

/** Type guard for a declaration being a request. */
export function isRequestDecl(decl: MessageDecl): decl is RequestDecl {
  return decl.kind === 'request';
}
