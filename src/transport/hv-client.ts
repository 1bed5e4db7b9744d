/**
 * A domain's connection to the backend: connects, says HELLO, and then
 * offers typed hypercalls, routed peer requests and events.
 *
 * Several layers of a guest (kernel, hyper_dmabuf driver, fences) share one
 * client: each registers handlers for the peer request types it owns.
 */
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import {
  lookupMessage, MAX_FRAME_BYTES, MAX_VERSION, MIN_VERSION, ProtocolError,
  type Envelope, type EventDecl, type EventOf, type MessageDecl, type RequestDecl, type RequestOf, type ResponseOf,
} from '../../protocol/index.ts';
import { HELLO } from '../../protocol/messages/session.ts';
import { RpcConnection, type IncomingRequest } from './rpc-connection.ts';

/** How to reach and authenticate to the backend. */
export interface HvClientOptions {
  url: string;
  domid: number;
  token: string;
  caps?: string[];
  /** Offered version range (defaults to this implementation's). */
  minVersion?: number;
  maxVersion?: number;
  requestTimeoutMs?: number;
  name?: string;
}

/** Handles a routed request from a peer domain; `src` is the backend-stamped sender. */
export type PeerRequestHandler<D extends RequestDecl = RequestDecl> =
  (body: RequestOf<D>, src: number, env: Envelope) => Promise<ResponseOf<D>> | ResponseOf<D>;

/** Handles an event; `src` is the sending domain for routed events, undefined for the backend's. */
export type EventHandler<D extends EventDecl = EventDecl> = (body: EventOf<D>, src: number | undefined, env: Envelope) => void;

/**
 * An authenticated connection of one domain to the backend.
 *
 * Emits 'close' when the connection ends.
 */
export class HvClient extends EventEmitter {
  readonly domid: number;
  readonly conn: RpcConnection;
  readonly version: number;
  readonly caps: readonly string[];
  readonly maxBatch: number;
  private readonly peerHandlers = new Map<string, PeerRequestHandler>();
  private readonly eventHandlers = new Map<string, EventHandler[]>();

  private constructor(conn: RpcConnection, domid: number, hello: ResponseOf<typeof HELLO>) {
    super();
    this.conn = conn;
    this.domid = domid;
    this.version = hello.version;
    this.caps = hello.caps;
    this.maxBatch = hello.maxBatch;
    conn.version = hello.version;
    conn.onRequest((req) => this.onPeerRequest(req));
    conn.on('event', (env: Envelope, decl: MessageDecl) => this.onEvent(env, decl));
    conn.on('close', (code: number, reason: string) => this.emit('close', code, reason));
  }

  /** Opens a WebSocket to the backend and completes HELLO; rejects with the backend's error. */
  static async connect(options: HvClientOptions): Promise<HvClient> {
    const ws = new WebSocket(options.url, { perMessageDeflate: false, maxPayload: MAX_FRAME_BYTES });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const conn = new RpcConnection(ws, {
      name: options.name ?? `dom${options.domid}`,
      ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
    });
    try {
      const hello = await conn.request(HELLO, {
        minVersion: options.minVersion ?? MIN_VERSION,
        maxVersion: options.maxVersion ?? MAX_VERSION,
        domid: options.domid,
        token: options.token,
        caps: options.caps ?? [],
      });
      return new HvClient(conn, hello.domid, hello);
    } catch (e) {
      await conn.destroy();
      throw e;
    }
  }

  /** A hypercall: a request handled by the backend. */
  call<D extends RequestDecl>(decl: D, body: RequestOf<D>, timeoutMs?: number): Promise<ResponseOf<D>> {
    return this.conn.request(decl, body, timeoutMs === undefined ? {} : { timeoutMs });
  }

  /** A request routed by the backend to domain `dst`. */
  peerRequest<D extends RequestDecl>(decl: D, dst: number, body: RequestOf<D>, timeoutMs?: number): Promise<ResponseOf<D>> {
    return this.conn.request(decl, body, timeoutMs === undefined ? { dst } : { dst, timeoutMs });
  }

  /** An event routed by the backend to domain `dst`. */
  peerNotify<D extends EventDecl>(decl: D, dst: number, body: EventOf<D>): void {
    this.conn.notify(decl, body, { dst });
  }

  /**
   * Registers the handler for routed requests of one type (one handler per
   * type). Returns a function that removes it; requests of that type then get
   * ERR_UNSUPPORTED_LAYER.
   */
  handlePeerRequest<D extends RequestDecl>(decl: D, handler: PeerRequestHandler<D>): () => void {
    if (this.peerHandlers.has(decl.type)) throw new Error(`a handler for ${decl.type} is already registered`);
    const registered = handler as unknown as PeerRequestHandler;
    this.peerHandlers.set(decl.type, registered);
    return () => {
      if (this.peerHandlers.get(decl.type) === registered) this.peerHandlers.delete(decl.type);
    };
  }

  /**
   * The optional layers (SPEC 6, "Optional layers") whose routed requests this
   * domain answers now: the layers of the types it has handlers for.
   */
  implementedLayers(): string[] {
    const layers = new Set<string>();
    for (const type of this.peerHandlers.keys()) {
      const decl = lookupMessage(type, this.conn.version);
      if (decl) layers.add(decl.layer);
    }
    return [...layers].sort();
  }

  /** Adds a listener for an event type (from the backend or a peer). Returns a function that removes it. */
  onEventOf<D extends EventDecl>(decl: D, handler: EventHandler<D>): () => void {
    const list = this.eventHandlers.get(decl.type) ?? [];
    list.push(handler as unknown as EventHandler);
    this.eventHandlers.set(decl.type, list);
    return () => {
      const at = list.indexOf(handler as unknown as EventHandler);
      if (at >= 0) list.splice(at, 1);
    };
  }

  /** Graceful close. */
  close(): Promise<void> {
    return this.conn.close();
  }

  private async onPeerRequest(req: IncomingRequest): Promise<Record<string, unknown>> {
    const { env, decl } = req;
    if (decl.route !== 'peer' || env.src === undefined) {
      throw new ProtocolError('ERR_WRONG_DIRECTION', `${env.type} is not a peer request`);
    }
    const handler = this.peerHandlers.get(env.type);
    // A declared type without a handler: this domain lacks the layer (SPEC 6, "Optional layers").
    if (!handler) throw new ProtocolError('ERR_UNSUPPORTED_LAYER', `dom${this.domid} does not implement the ${decl.layer} layer (no handler for ${env.type})`);
    return (await handler(env.body as never, env.src, env)) as Record<string, unknown>;
  }

  private onEvent(env: Envelope, decl: MessageDecl): void {
    if (decl.kind !== 'event') return;
    // Peer events must carry the backend-stamped source; backend events must not.
    if (decl.from === 'peer' && env.src === undefined) return;
    if (decl.from === 'hv' && env.src !== undefined) return;
    for (const handler of [...(this.eventHandlers.get(env.type) ?? [])]) {
      try {
        handler(env.body as never, env.src, env);
      } catch (e) {
        this.emit('handlerError', e, env);
      }
    }
  }
}
