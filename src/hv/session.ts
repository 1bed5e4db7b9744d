/**
 * One connection to the backend, from accept to close.
 *
 * Session states:
 *
 *   awaiting-hello --HELLO ok--> active --socket closes--> closed
 *   awaiting-hello --socket closes / HELLO timeout (1008)--> closed
 *   active --DOMAIN_DESTROY (domain detached)--> closed
 *
 * awaiting-hello: only HELLO is served; any other request gets
 * ERR_NOT_AUTHENTICATED, any other frame a PROTOCOL_ERROR with it; no frame
 * larger than MAX_HELLO_FRAME_BYTES is read (1009), and HELLO must succeed
 * within the deadline that began at the TCP accept (SPEC 3.7).
 * active: every frame must carry the negotiated version
 * (ERR_VERSION_MISMATCH) and no `src` but its own (ERR_SPOOFED_SOURCE);
 * requests go to the backend's handlers or to the router; replies and
 * events to the router.
 */
import {
  MAX_BATCH, MAX_HELLO_FRAME_BYTES, MAX_VERSION, MIN_VERSION, negotiateVersion, ProtocolError,
  type Envelope, type EventDecl, type MessageDecl, type RequestDecl, type RequestOf,
} from '../../protocol/index.ts';
import { DOMAIN_UP, HELLO, PROTOCOL_ERROR } from '../../protocol/messages/session.ts';
import { REPLY_DEFERRED, RpcConnection, type IncomingRequest } from '../transport/rpc-connection.ts';
import type WebSocket from 'ws';
import { commonCaps } from './capabilities.ts';
import type { HvContext } from './context.ts';
import { DomainState } from '../../protocol/machines/domain.ts';
import { SessionMachine, SessionState } from '../../protocol/machines/session.ts';
import type { Domain } from './domain.ts';
import { killDomain } from './domain-death.ts';
import { CONTROL_DOMID, tokenMatches } from './domain-registry.ts';
import { hvHandler } from './handlers.ts';
import type { Admission } from './server.ts';
import type { SessionLink } from './session-link.ts';
import { workReserve } from './work-reserve.ts';

let nextSessionSerial = 1;

/**
 * Values (map keys included) of an incoming frame decoded and validated per
 * turn of the event loop (SPEC 3.7, "work per frame"): a maximal v1
 * GNTTAB_COPY (1,376,272 values) takes about 170 turns, each a few
 * milliseconds at most, and every other connection is served between two.
 */
export const DECODE_SLICE_VALUES = 8_192;

/** The backend's end of one connection. */
export class Session implements SessionLink {
  readonly conn: RpcConnection;
  /** Lifecycle (SPEC.md 5); changes only through its transition table. */
  readonly lifecycle = SessionMachine.start();
  /** The authenticated domain (after HELLO). */
  domid: number | undefined;
  /** The guest domain this session speaks for (undefined for the control domain and before HELLO). */
  domain: Domain | undefined;
  /** Negotiated protocol version. */
  version = MIN_VERSION;
  /** A read-only observer of domain 0 (SPEC 9.6): only OBSERVER_REQUESTS are served. */
  observer = false;
  private readonly ctx: HvContext;
  private readonly admission: Admission;

  constructor(ctx: HvContext, ws: WebSocket, admission: Admission) {
    this.ctx = ctx;
    this.admission = admission;
    this.conn = new RpcConnection(ws, {
      name: `hv<-conn${nextSessionSerial++}`,
      maxFrameBytes: Math.min(MAX_HELLO_FRAME_BYTES, ctx.opts.maxFrameBytes),
      sendBudgetBytes: ctx.opts.backpressureBytes,
      workReserve,
      decodeSliceValues: DECODE_SLICE_VALUES,
    });
    this.conn.onRequest((req) => this.onRequest(req));
    // Counted by the backend for HV_STATS `traffic` (src/hv/traffic.ts); frames before HELLO count for no domain.
    this.conn.observe((direction, env, bytes) => { if (this.domid !== undefined) ctx.traffic.frame(this.domid, direction, env, bytes); });
    this.conn.on('frame', (env: Envelope, decl: MessageDecl) => {
      if (env.kind === 'req') return;
      try {
        this.onOneWay(env, decl);
      } catch (e) {
        ctx.log(`${this.label}: ${env.kind} ${env.type}: ${(e as Error)?.stack ?? String(e)}`);
      }
    });
    this.conn.on('internalError', (e: unknown, env: Envelope) => {
      ctx.counters.internalErrors++;
      ctx.log(`${this.label}: ${env.type} #${env.id}: internal error: ${(e as Error)?.stack ?? String(e)}`);
    });
    this.conn.on('protocolError', (e: ProtocolError) => ctx.log(`${this.label}: protocol error ${e.code}: ${e.message}`));
    this.conn.on('close', (code: number) => this.onClose(code));
    this.conn.on('paused', (unsent: number) => ctx.log(`${this.label}: over its send budget (${unsent} bytes unsent or reserved for requests being handled, SPEC 3.7): not reading it until it drains`));
    this.conn.on('resumed', () => ctx.log(`${this.label}: drained: reading it again`));
    admission.onExpired = () => {
      if (this.state === SessionState.AwaitingHello) void this.conn.close(1008, 'HELLO timeout');
    };
  }

  /** True while the session is authenticated and its socket open. */
  get isOpen(): boolean {
    return this.state === SessionState.Active && this.conn.state === 'open' && !this.conn.peerClosed;
  }

  /** Its lifecycle state. */
  get state(): SessionState {
    return this.lifecycle.state;
  }

  /** Name for logs. */
  get label(): string {
    return this.domid === undefined ? this.conn.name : `d${this.domid}`;
  }

  /** The domain died (destroyed): this connection no longer speaks for it. */
  detachDomain(): void {
    this.domain = undefined;
    if (this.lifecycle.allows('domain-died')) this.lifecycle.apply('domain-died');
  }

  /** Sends PROTOCOL_ERROR about a frame that cannot get an err reply. */
  sendProtocolError(error: ProtocolError, about: Pick<Envelope, 'id' | 'type'>): void {
    if (this.conn.state !== 'open') return;
    const body: Record<string, unknown> = { code: error.code, message: error.message.slice(0, 1024), id: about.id, type: about.type };
    if (error.field !== undefined) body.field = error.field.slice(0, 256);
    try {
      this.conn.sendEnvelope({ v: this.conn.version, kind: 'evt', type: PROTOCOL_ERROR.type, id: 0, body });
    } catch {
      // Closing: nothing more to say.
    }
  }

  private onRequest({ env, decl }: IncomingRequest): Record<string, unknown> | Promise<Record<string, unknown>> | typeof REPLY_DEFERRED {
    if (this.state === SessionState.AwaitingHello) {
      if (env.type !== HELLO.type) throw new ProtocolError('ERR_NOT_AUTHENTICATED', `${env.type} before HELLO`);
      return this.hello(env);
    }
    if (this.state === SessionState.Closed) throw new ProtocolError('ERR_NO_SUCH_DOMAIN', 'this connection no longer speaks for a live domain');
    this.checkEnvelope(env);
    if (env.type === HELLO.type) throw new ProtocolError('ERR_WRONG_DIRECTION', 'HELLO on an authenticated connection');
    checkCaller(decl, this.domid!);
    if (this.observer && !OBSERVER_REQUESTS.has(decl.type)) throw new ProtocolError('ERR_NOT_PERMITTED', `${decl.type}: an observer connection may only read (${[...OBSERVER_REQUESTS].join(', ')}; SPEC 9.6)`);
    // The request being handled counts itself (handlingCount includes it).
    const inFlight = this.conn.handlingCount - 1 + this.ctx.router.routedFrom(this.domid!);
    if (inFlight >= this.ctx.opts.maxRequestsInFlight) {
      throw new ProtocolError('ERR_LIMIT', `${inFlight} requests of this connection are in flight (the limit is ${this.ctx.opts.maxRequestsInFlight}, SPEC 3.7)`);
    }
    if (decl.route === 'peer') {
      this.ctx.router.forwardRequest(this, env);
      return REPLY_DEFERRED;
    }
    if (env.dst !== undefined) throw new ProtocolError('ERR_WRONG_DIRECTION', `${env.type} is a backend request and takes no dst`, 'envelope.dst');
    const handler = hvHandler(decl);
    if (!handler) throw new ProtocolError('ERR_UNKNOWN_TYPE', `${env.type} is not implemented by this backend`);
    return handler(this.ctx, this.domain, env.body);
  }

  /** Replies, errors and events. */
  private onOneWay(env: Envelope, decl: MessageDecl): void {
    if (this.state === SessionState.AwaitingHello) {
      this.sendProtocolError(new ProtocolError('ERR_NOT_AUTHENTICATED', `${env.kind} ${env.type} before HELLO`), env);
      return;
    }
    if (this.state === SessionState.Closed) return;
    try {
      this.checkEnvelope(env);
    } catch (e) {
      this.sendProtocolError(e as ProtocolError, env);
      return;
    }
    if (env.kind === 'res' || env.kind === 'err') {
      this.ctx.router.forwardReply(this, env);
      return;
    }
    const from = (decl as EventDecl).from;
    if (from === 'hv') {
      this.sendProtocolError(new ProtocolError('ERR_WRONG_DIRECTION', `${env.type} is sent by the backend only`), env);
    } else if (from === 'peer' || env.dst !== undefined) {
      this.ctx.router.forwardEvent(this, env);
    } else {
      // A PROTOCOL_ERROR addressed to the backend: the domain disliked one of our frames.
      this.ctx.log(`${this.label} reports ${JSON.stringify(env.body)}`);
    }
  }

  /** Rules for every frame after HELLO. */
  private checkEnvelope(env: Envelope): void {
    if (env.v !== this.version) {
      throw new ProtocolError('ERR_VERSION_MISMATCH', `frame version ${env.v} differs from the negotiated version ${this.version}`, 'envelope.v');
    }
    if (env.src !== undefined && env.src !== this.domid) {
      throw new ProtocolError('ERR_SPOOFED_SOURCE', `d${this.domid} may not send as d${env.src}`, 'envelope.src');
    }
  }

  /**
   * HELLO, in order: version negotiation (ERR_UNSUPPORTED_VERSION with the
   * backend's min/max; the connection stays open for another try), the
   * domain exists and is alive (ERR_NO_SUCH_DOMAIN), the token matches
   * (ERR_BAD_TOKEN, then close 1008), no other live connection for the
   * domain (ERR_ALREADY_CONNECTED). On success the domain becomes running
   * and every other connected domain gets DOMAIN_UP.
   */
  private hello(env: Envelope): Record<string, unknown> | typeof REPLY_DEFERRED {
    const body = env.body as RequestOf<typeof HELLO>;
    const { minVersion, maxVersion } = this.ctx.opts;
    const version = negotiateVersion({ min: body.minVersion, max: body.maxVersion }, { min: minVersion, max: maxVersion });
    if (version === null) {
      throw new ProtocolError('ERR_UNSUPPORTED_VERSION',
        `no shared version: offered [${body.minVersion}, ${body.maxVersion}], supported [${minVersion}, ${maxVersion}]`,
        undefined, { min: minVersion, max: maxVersion });
    }
    if (this.ctx.closing) throw new ProtocolError('ERR_NOT_PERMITTED', 'the backend is shutting down');
    const { registry } = this.ctx;
    let domain: Domain | undefined;
    if (body.domid === CONTROL_DOMID && tokenMatches(registry.observerToken, body.token)) {
      return this.helloObserver(body, version);
    } else if (body.domid === CONTROL_DOMID) {
      if (!tokenMatches(registry.controlToken, body.token)) return this.refuse(env, new ProtocolError('ERR_BAD_TOKEN', 'bad token for domain 0'));
    } else {
      domain = registry.get(body.domid);
      if (!domain || !domain.alive) throw new ProtocolError('ERR_NO_SUCH_DOMAIN', `domain ${body.domid} does not exist or has died`, 'body.domid');
      if (!tokenMatches(domain.token, body.token)) return this.refuse(env, new ProtocolError('ERR_BAD_TOKEN', `bad token for domain ${body.domid}`));
    }
    const previous = registry.sessionOf(body.domid);
    if (previous?.isOpen || domain?.state === DomainState.Running) {
      throw new ProtocolError('ERR_ALREADY_CONNECTED', `domain ${body.domid} already has a live connection`);
    }
    // The toolstack's previous control connection is closing (its close frame was read, SPEC 6.1 rule 1):
    // its routes end now, before this session's can begin; its close event then finds a successor.
    if (previous && body.domid === CONTROL_DOMID) this.ctx.router.domainGone(CONTROL_DOMID);
    this.admission.authenticated();
    this.conn.setMaxFrameBytes(this.ctx.opts.maxFrameBytes);
    this.lifecycle.apply('hello');
    this.domid = body.domid;
    this.version = version;
    this.conn.version = version;
    registry.attach(body.domid, this);
    if (domain) {
      domain.lifecycle.apply('hello');
      domain.session = this;
      this.domain = domain;
    }
    this.ctx.log(`d${body.domid} connected (v${version})`);
    for (const s of registry.connected()) {
      if (s === this || !s.isOpen) continue;
      try {
        s.conn.notify(DOMAIN_UP, domain ? { domid: body.domid, name: domain.name } : { domid: body.domid });
      } catch {
        // closing
      }
    }
    return {
      version, domid: body.domid, caps: commonCaps(body.caps),
      maxFrameBytes: this.ctx.opts.maxFrameBytes, maxBatch: MAX_BATCH,
    };
  }

  /**
   * An observer (SPEC 9.6): domain 0's read-only role, beside the control
   * connection and not instead of it. It is not registered as domain 0's
   * session, so it neither conflicts with the control connection nor
   * receives events, and it announces nothing (no DOMAIN_UP).
   */
  private helloObserver(body: RequestOf<typeof HELLO>, version: number): Record<string, unknown> {
    this.admission.authenticated();
    this.conn.setMaxFrameBytes(this.ctx.opts.maxFrameBytes);
    this.lifecycle.apply('hello');
    this.observer = true;
    this.domid = CONTROL_DOMID;
    this.version = version;
    this.conn.version = version;
    this.ctx.log('observer connected');
    return {
      version, domid: CONTROL_DOMID, caps: commonCaps(body.caps),
      maxFrameBytes: this.ctx.opts.maxFrameBytes, maxBatch: MAX_BATCH,
    };
  }

  /** Answers HELLO with an authentication error and closes the connection with 1008 (policy violation). */
  private refuse(env: Envelope, error: ProtocolError): typeof REPLY_DEFERRED {
    this.ctx.log(`${this.label}: HELLO refused: ${error.message}`);
    this.conn.replyError(env, error);
    void this.conn.close(1008, error.code);
    return REPLY_DEFERRED;
  }

  private onClose(code: number): void {
    const wasActive = this.state === SessionState.Active;
    if (this.lifecycle.allows('closed')) this.lifecycle.apply('closed');
    if (this.observer) return;
    if (this.domid === undefined) return;
    this.ctx.registry.detach(this.domid, this);
    const domain = this.domain;
    if (domain && domain.session === this) {
      this.ctx.log(`d${this.domid} disconnected (${code})`);
      void killDomain(this.ctx, domain, 'disconnected');
    } else if (this.domid === CONTROL_DOMID && wasActive && this.ctx.registry.sessionOf(CONTROL_DOMID) === undefined) {
      this.ctx.router.domainGone(CONTROL_DOMID);
    }
  }
}

/** What an observer connection may ask (SPEC 9.6): reads that change nothing. */
export const OBSERVER_REQUESTS: ReadonlySet<string> = new Set(['HV_STATS']);

/** Caller rules: control requests from domain 0 only, guest requests from guests only (ERR_NOT_PERMITTED). */
function checkCaller(decl: RequestDecl, domid: number): void {
  if (decl.caller === 'control' && domid !== CONTROL_DOMID) {
    throw new ProtocolError('ERR_NOT_PERMITTED', `${decl.type} is a control operation (domain 0 only)`);
  }
  if (decl.caller === 'guest' && domid === CONTROL_DOMID) {
    throw new ProtocolError('ERR_NOT_PERMITTED', `${decl.type} is a guest operation; the control domain has no grant table or ports`);
  }
}
