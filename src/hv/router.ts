/**
 * The message router: forwards requests, replies and events declared as
 * domain-to-domain, stamping the true source on each, and keeps every
 * routed request in flight so that it gets exactly one reply even if its
 * destination dies.
 *
 * Request ids are chosen by each requester and are unique only among that
 * requester's requests, so two domains may route requests with the same id
 * to one destination. The router therefore gives every forwarded request a
 * fresh id, unique on the destination's connection, and translates the
 * reply back to the requester's id. A reply is forwarded only if it comes
 * from the domain the request went to, with the request's type: a domain
 * cannot answer (or forge an answer to) a request that was not sent to it.
 */
import { ProtocolError, type Envelope } from '../../protocol/index.ts';
import type { DomainRegistry } from './domain-registry.ts';
import type { SessionLink } from './session-link.ts';

/** One routed request awaiting its reply. */
interface Route {
  /** Requesting domain and its id for the request. */
  readonly srcDom: number;
  readonly srcId: number;
  /** Destination domain and the id the router gave the forwarded request. */
  readonly dstDom: number;
  readonly fwdId: number;
  readonly type: string;
}

/** Forwards domain-to-domain messages. */
export class Router {
  private readonly registry: DomainRegistry;
  private readonly backpressureBytes: number;
  private readonly log: (line: string) => void;
  /** Routes by requester, then requester's id. */
  private readonly outgoing = new Map<number, Map<number, Route>>();
  /** Routes by destination, then forwarded id. */
  private readonly incoming = new Map<number, Map<number, Route>>();
  /** Last forwarded id per destination. */
  private readonly lastId = new Map<number, number>();
  private count = 0;

  constructor(registry: DomainRegistry, backpressureBytes: number, log: (line: string) => void) {
    this.registry = registry;
    this.backpressureBytes = backpressureBytes;
    this.log = log;
  }

  /** Routed requests awaiting their reply. */
  get pending(): number {
    return this.count;
  }

  /** Routed requests from `domid` awaiting their reply. */
  routedFrom(domid: number): number {
    return this.outgoing.get(domid)?.size ?? 0;
  }

  /**
   * Forwards a routed request from `from` to `env.dst`, or throws the error
   * to answer it with: ERR_BAD_ENVELOPE (no dst), ERR_DUPLICATE_ID (the
   * requester already has a routed request with this id in flight),
   * ERR_NO_SUCH_DOMAIN (dst not connected), ERR_BACKPRESSURE (dst's
   * connection holds more than the high-water mark unsent).
   */
  forwardRequest(from: SessionLink, env: Envelope): void {
    const srcDom = from.domid!;
    if (env.dst === undefined) throw new ProtocolError('ERR_BAD_ENVELOPE', `${env.type} is routed and needs dst`, 'envelope.dst');
    const out = this.outgoing.get(srcDom);
    if (out?.has(env.id)) throw new ProtocolError('ERR_DUPLICATE_ID', `a routed request with id ${env.id} is already in flight`, 'envelope.id');
    const dest = this.destination(env.dst);
    const fwdId = this.allocId(env.dst);
    const route: Route = { srcDom, srcId: env.id, dstDom: env.dst, fwdId, type: env.type };
    this.add(route);
    try {
      dest.conn.sendEnvelope({ v: dest.version, kind: 'req', type: env.type, id: fwdId, src: srcDom, dst: env.dst, body: env.body });
    } catch (e) {
      this.delete(route);
      throw e;
    }
  }

  /**
   * Forwards a reply (res or err) from `from` to the requester. A reply
   * with no matching route (unknown id, other type, or a dst that is not
   * the requester) is dropped and logged: the requester either never asked
   * or was already answered (ERR_PEER_GONE, or it died).
   */
  forwardReply(from: SessionLink, env: Envelope): void {
    const dstDom = from.domid!;
    const route = this.incoming.get(dstDom)?.get(env.id);
    if (!route || route.type !== env.type || (env.dst !== undefined && env.dst !== route.srcDom)) {
      this.log(`d${dstDom}: dropped stray ${env.kind} ${env.type} #${env.id}`);
      return;
    }
    this.delete(route);
    const requester = this.registry.sessionOf(route.srcDom);
    if (!requester || !requester.isOpen) return;
    try {
      requester.conn.sendEnvelope({ v: requester.version, kind: env.kind, type: env.type, id: route.srcId, src: dstDom, dst: route.srcDom, body: env.body });
    } catch (e) {
      // The reply cannot be expressed to the requester (e.g. its version); it still gets exactly one answer.
      const err = e instanceof ProtocolError ? e : new ProtocolError('ERR_INTERNAL', String(e));
      this.replyError(requester, route, new ProtocolError('ERR_INTERNAL', `reply from d${dstDom} could not be forwarded: ${err.message}`));
    }
  }

  /**
   * Forwards a routed event. Errors go back to the sender as PROTOCOL_ERROR
   * (events have no reply): ERR_BAD_ENVELOPE (no dst), ERR_NO_SUCH_DOMAIN,
   * ERR_BACKPRESSURE.
   */
  forwardEvent(from: SessionLink, env: Envelope): void {
    try {
      if (env.dst === undefined) throw new ProtocolError('ERR_BAD_ENVELOPE', `${env.type} is routed and needs dst`, 'envelope.dst');
      const dest = this.destination(env.dst);
      dest.conn.sendEnvelope({ v: dest.version, kind: 'evt', type: env.type, id: 0, src: from.domid!, dst: env.dst, body: env.body });
    } catch (e) {
      const err = e instanceof ProtocolError ? e : new ProtocolError('ERR_INTERNAL', String(e));
      from.sendProtocolError(err, env);
    }
  }

  /**
   * A domain's session ended. Every routed request to it is answered with
   * ERR_PEER_GONE (from the backend: no `src`); routed requests
   * from it are forgotten, so that their replies are dropped instead of
   * reaching whoever reuses the id. Returns the requests answered.
   */
  domainGone(domid: number): number {
    let answered = 0;
    const inc = this.incoming.get(domid);
    if (inc) {
      for (const route of [...inc.values()]) {
        this.delete(route);
        const requester = this.registry.sessionOf(route.srcDom);
        if (requester && requester.isOpen && route.srcDom !== domid) {
          this.replyError(requester, route, new ProtocolError('ERR_PEER_GONE', `d${domid} died before answering ${route.type}`));
          answered++;
        }
      }
    }
    const out = this.outgoing.get(domid);
    if (out) for (const route of [...out.values()]) this.delete(route);
    this.incoming.delete(domid);
    this.outgoing.delete(domid);
    this.lastId.delete(domid);
    return answered;
  }

  private destination(dst: number): SessionLink {
    const dest = this.registry.sessionOf(dst);
    if (!dest || !dest.isOpen) throw new ProtocolError('ERR_NO_SUCH_DOMAIN', `domain ${dst} is not connected`, 'envelope.dst');
    if (dest.conn.bufferedAmount > this.backpressureBytes) {
      throw new ProtocolError('ERR_BACKPRESSURE', `domain ${dst} has ${dest.conn.bufferedAmount} bytes unsent; retry later`);
    }
    return dest;
  }

  /**
   * Answers a routed request with an error of the backend's own: no `src`
   * (only the backend sends frames without one, so the requester accepts it
   * in place of the destination's reply).
   */
  private replyError(requester: SessionLink, route: Route, error: ProtocolError): void {
    try {
      requester.conn.sendEnvelope({
        v: requester.version, kind: 'err', type: route.type, id: route.srcId,
        body: { code: error.code, message: error.message.slice(0, 1024) },
      });
    } catch {
      // The requester's connection closed meanwhile: nobody is waiting any more.
    }
  }

  private allocId(dst: number): number {
    const inc = this.incoming.get(dst);
    let id = this.lastId.get(dst) ?? 0;
    do id = id >= 0xffffffff ? 1 : id + 1;
    while (inc?.has(id));
    this.lastId.set(dst, id);
    return id;
  }

  private add(route: Route): void {
    let out = this.outgoing.get(route.srcDom);
    if (!out) this.outgoing.set(route.srcDom, (out = new Map()));
    out.set(route.srcId, route);
    let inc = this.incoming.get(route.dstDom);
    if (!inc) this.incoming.set(route.dstDom, (inc = new Map()));
    inc.set(route.fwdId, route);
    this.count++;
  }

  private delete(route: Route): void {
    const out = this.outgoing.get(route.srcDom);
    const inc = this.incoming.get(route.dstDom);
    if (inc?.get(route.fwdId) === route) {
      inc.delete(route.fwdId);
      this.count--;
    }
    if (out?.get(route.srcId) === route) out.delete(route.srcId);
  }
}
