/**
 * Message declarations. Each message is declared once: its type name, who
 * may send it, the version that introduced it, and its fields. The codec
 * checks every incoming body against its declaration, and SPEC.md's message
 * tables are generated from the same declarations.
 */
import type { Fields, Infer } from './schema.ts';

/**
 * Where a request goes. `hv`: handled by the backend. `peer`: routed by the
 * backend to the domain named in the envelope's `dst`, with `src` stamped.
 */
export type Route = 'hv' | 'peer';

/** Who may send a request to the backend. */
export type Caller = 'guest' | 'control' | 'any';

/** A request and the shape of its successful response. */
export interface RequestDecl<Q extends Fields = Fields, R extends Fields = Fields> {
  readonly kind: 'request';
  readonly type: string;
  readonly route: Route;
  /** For `hv` requests: which domains may call it (control = domain 0, the toolstack). */
  readonly caller: Caller;
  readonly since: number;
  /** Layer, for the spec: 'session' | 'hv' | 'dmabuf' | 'fence' | 'sim'. */
  readonly layer: string;
  readonly doc: string;
  readonly request: Q;
  readonly response: R;
}

/** A one-way message: from the backend, or routed from a peer domain. */
export interface EventDecl<B extends Fields = Fields> {
  readonly kind: 'event';
  readonly type: string;
  readonly from: 'hv' | 'peer' | 'any';
  readonly since: number;
  readonly layer: string;
  readonly doc: string;
  readonly body: B;
}

/** Any declaration. */
export type MessageDecl = RequestDecl | EventDecl;

/** Declares a request. */
export function defineRequest<Q extends Fields, R extends Fields>(d: Omit<RequestDecl<Q, R>, 'kind'>): RequestDecl<Q, R> {
  return { kind: 'request', ...d };
}

/** Declares an event. */
export function defineEvent<B extends Fields>(d: Omit<EventDecl<B>, 'kind'>): EventDecl<B> {
  return { kind: 'event', ...d };
}

/** The decoded body of a request. */
export type RequestOf<D> = D extends RequestDecl<infer Q, Fields> ? Infer<Q> : never;
/** The decoded body of a successful response. */
export type ResponseOf<D> = D extends RequestDecl<Fields, infer R> ? Infer<R> : never;
/** The decoded body of an event. */
export type EventOf<D> = D extends EventDecl<infer B> ? Infer<B> : never;
