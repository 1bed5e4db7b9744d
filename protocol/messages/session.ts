/** Session messages: version negotiation, authentication and liveness. */
import { MAX_CAPS, MAX_DOMID, MAX_ECHO_BYTES, MAX_NAME } from '../limits.ts';
import { defineEvent, defineRequest } from '../message.ts';
import { opt, req, t, U16, U32 } from '../schema.ts';

/** A capability name, e.g. "gnttab.v1", "dmabuf.dir.multilevel". */
export const CAP_NAME = t.str(MAX_NAME, /^[a-z0-9][a-z0-9._-]*$/);

/** Opens a session: offers a version range, names the domain and proves it with its token. */
export const HELLO = defineRequest({
  type: 'HELLO', route: 'hv', caller: 'any', since: 1, layer: 'session',
  doc: 'First message on a connection. The backend answers with the highest version in both ranges, or ERR_UNSUPPORTED_VERSION carrying its own range in min/max. Any other message before a successful HELLO gets ERR_NOT_AUTHENTICATED. A second HELLO on the same connection gets ERR_WRONG_DIRECTION.',
  request: {
    minVersion: req(t.uint(0xffff, 1), 'Lowest version the client speaks.'),
    maxVersion: req(t.uint(0xffff, 1), 'Highest version the client speaks.'),
    domid: req(t.uint(MAX_DOMID), 'The domain this connection speaks for (0 = the control domain).'),
    token: req(t.str(128), 'Per-domain secret given at domain creation.'),
    caps: req(t.array(CAP_NAME, MAX_CAPS), 'Capabilities the client supports.'),
  },
  response: {
    version: req(t.uint(0xffff, 1), 'The chosen version (1..65535, as the envelope\'s `v`); every later frame carries it in `v`.'),
    domid: req(t.uint(MAX_DOMID), 'The authenticated domain id.'),
    caps: req(t.array(CAP_NAME, MAX_CAPS), 'Capabilities both sides support.'),
    maxFrameBytes: req(U32, 'Largest frame the backend accepts.'),
    maxBatch: req(U32, 'Most entries in one grant batch.'),
  },
});

/** A round trip to the backend, for liveness and latency baselines. */
export const PING = defineRequest({
  type: 'PING', route: 'hv', caller: 'any', since: 1, layer: 'session',
  doc: 'Answered at once with the same nonce.',
  request: { nonce: req(U32, 'Any value; echoed.') },
  response: { nonce: req(U32, 'The request\'s nonce.') },
});

/** A peer round trip with a payload: the baseline for handoff and copy benchmarks. */
export const ECHO = defineRequest({
  type: 'ECHO', route: 'peer', caller: 'guest', since: 1, layer: 'session',
  doc: 'Routed to `dst`, which answers with the same payload. Benchmarks compare zero-copy operations against it on the same path.',
  request: { payload: req(t.bin(MAX_ECHO_BYTES), 'Bytes to echo.') },
  response: { payload: req(t.bin(MAX_ECHO_BYTES), 'The same bytes.') },
});

/** An error that cannot be sent as an `err` reply, because the offending frame was not a well-formed request. */
export const PROTOCOL_ERROR = defineEvent({
  type: 'PROTOCOL_ERROR', from: 'any', since: 1, layer: 'session',
  doc: 'Sent by any receiver (backend or domain) instead of an err reply when the offending frame was not a request with a declared type: malformed bytes, a bad envelope, an unknown type, a bad event. Carries the id and type of the frame when they could be read.',
  body: {
    code: req(t.str(64, /^[A-Z][A-Z0-9_]{0,63}$/), 'Stable error code.'),
    message: req(t.str(1024), 'Explanation.'),
    field: opt(t.str(256), 'Path of the offending field.'),
    id: opt(U32, 'id of the offending frame, if readable.'),
    type: opt(t.str(64), 'type of the offending frame, if readable.'),
    min: opt(U16, 'ERR_UNSUPPORTED_VERSION: lowest supported version.'),
    max: opt(U16, 'ERR_UNSUPPORTED_VERSION: highest supported version.'),
  },
});

/** Tells every connected domain that a domain died or disconnected. */
export const DOMAIN_DIED = defineEvent({
  type: 'DOMAIN_DIED', from: 'hv', since: 1, layer: 'session',
  doc: 'Sent by the backend to every other connected domain after it has released the dead domain\'s mappings, closed its event channels and answered its routed requests with ERR_PEER_GONE.',
  body: {
    domid: req(t.uint(MAX_DOMID), 'The domain that died.'),
    reason: req(t.enum('disconnected', 'destroyed'), 'disconnected: its connection closed (process exit or crash); destroyed: the control domain destroyed it.'),
    mappingsReleased: req(U32, 'Grant mappings the dead domain held that the backend released.'),
  },
});

/** Tells a domain that a peer connected (so a driver can start talking to it). */
export const DOMAIN_UP = defineEvent({
  type: 'DOMAIN_UP', from: 'hv', since: 1, layer: 'session',
  doc: 'Sent by the backend to every other connected domain when a domain completes HELLO.',
  body: {
    domid: req(t.uint(MAX_DOMID), 'The domain that connected.'),
    name: opt(t.str(MAX_NAME), 'Its name.'),
  },
});
