/**
 * The envelope: the map that every frame carries.
 *
 *   { v, kind, type, id, src?, dst?, body }
 *
 * Its layout is frozen across protocol versions.
 */
import { MAX_DOMID, MAX_MESSAGE } from './limits.ts';
import { opt, req, t, U16, U32, type Infer } from './schema.ts';

/** Envelope kinds: a request, its successful response, its error response, or a one-way event. */
export const KINDS = ['req', 'res', 'err', 'evt'] as const;
/** An envelope kind. */
export type Kind = (typeof KINDS)[number];

/** Message type names: upper-case words joined by underscores. */
export const TYPE_NAME = /^[A-Z][A-Z0-9_]{0,63}$/;

/** Envelope fields. `body` is checked separately, against the message's declaration. */
export const envelopeFields = {
  v: req(t.uint(0xffff, 1), 'Protocol version of this frame: the negotiated one (any value on HELLO).'),
  kind: req(t.enum(...KINDS), 'req, res, err or evt.'),
  type: req(t.str(64, TYPE_NAME), 'Message type, as declared.'),
  id: req(U32, 'Request id chosen by the requester, echoed in res/err; 0 on evt. Unique among the sender\'s requests in flight.'),
  src: opt(t.uint(MAX_DOMID), 'Source domain. Stamped by the backend on every message it routes or originates for a domain; a domain may omit it or set its own id.'),
  dst: opt(t.uint(MAX_DOMID), 'Destination domain, on messages routed between domains.'),
} as const;

/** The fields of an err body. */
export const errorBodyFields = {
  code: req(t.str(64, TYPE_NAME), 'Stable error code (see the error table).'),
  message: req(t.str(MAX_MESSAGE), 'Human-readable explanation.'),
  field: opt(t.str(256), 'Path of the offending field, e.g. body.refs[3].'),
  min: opt(U16, 'ERR_UNSUPPORTED_VERSION: lowest supported version.'),
  max: opt(U16, 'ERR_UNSUPPORTED_VERSION: highest supported version.'),
} as const;

/** The body of an err reply. */
export type ErrorBody = Infer<typeof errorBodyFields>;

/** A decoded frame, before the body is interpreted. */
export interface Envelope<B = Record<string, unknown>> {
  v: number;
  kind: Kind;
  type: string;
  id: number;
  src?: number;
  dst?: number;
  body: B;
}
