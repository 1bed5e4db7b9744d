/** Event channels (EVTCHNOP_*): a port pair between two domains that carries notifications. */
import { MAX_DOMID } from '../limits.ts';
import { defineEvent, defineRequest } from '../message.ts';
import { opt, req, t, U32 } from '../schema.ts';

const PORT = t.uint(4095, 1);

/** Allocates a port that `remoteDom` may bind to. */
export const EVTCHN_ALLOC_UNBOUND = defineRequest({
  type: 'EVTCHN_ALLOC_UNBOUND', route: 'hv', caller: 'guest', since: 1, layer: 'hv',
  doc: 'Allocates a port in the caller, in state unbound, that only remoteDom may bind. ERR_LIMIT when the caller has no free port; ERR_NO_SUCH_DOMAIN when remoteDom does not exist.',
  request: { remoteDom: req(t.uint(MAX_DOMID), 'Domain allowed to bind.') },
  response: { port: req(PORT, 'The new local port.') },
});

/** Binds a new local port to a remote unbound port. */
export const EVTCHN_BIND_INTERDOMAIN = defineRequest({
  type: 'EVTCHN_BIND_INTERDOMAIN', route: 'hv', caller: 'guest', since: 1, layer: 'hv',
  doc: 'The remote port must be unbound and allocated for the caller, otherwise ERR_BAD_ARGUMENT. Both ports become interdomain.',
  request: {
    remoteDom: req(t.uint(MAX_DOMID), 'Domain that allocated the port.'),
    remotePort: req(PORT, 'Its port.'),
  },
  response: { localPort: req(PORT, 'The caller\'s new port, bound to the remote one.') },
});

/** Notifies the other end of an interdomain port. */
export const EVTCHN_SEND = defineRequest({
  type: 'EVTCHN_SEND', route: 'hv', caller: 'guest', since: 1, layer: 'hv',
  doc: 'Delivers EVTCHN_EVENT to the bound peer. ERR_BAD_ARGUMENT for a port that is not the caller\'s or is not interdomain. A peer that is gone closes the port first (see EVTCHN_CLOSE).',
  request: { port: req(PORT, 'A local interdomain port.') },
  response: {},
});

/** Closes a port. */
export const EVTCHN_CLOSE = defineRequest({
  type: 'EVTCHN_CLOSE', route: 'hv', caller: 'guest', since: 1, layer: 'hv',
  doc: 'Frees the port. If it was interdomain, the remote end returns to unbound (for the caller), as in Xen.',
  request: { port: req(PORT, 'A local port.') },
  response: {},
});

/** Reports a port's state. */
export const EVTCHN_STATUS = defineRequest({
  type: 'EVTCHN_STATUS', route: 'hv', caller: 'guest', since: 1, layer: 'hv',
  doc: 'State of one of the caller\'s ports.',
  request: { port: req(PORT, 'A local port.') },
  response: {
    state: req(t.enum('closed', 'unbound', 'interdomain'), 'Port state.'),
    remoteDom: opt(t.uint(MAX_DOMID), 'unbound: who may bind; interdomain: the peer.'),
    remotePort: opt(PORT, 'interdomain: the peer\'s port.'),
  },
});

/** A notification on a port, from the backend. */
export const EVTCHN_EVENT = defineEvent({
  type: 'EVTCHN_EVENT', from: 'hv', since: 1, layer: 'hv',
  doc: 'The peer sent on the port bound to `port`. Consecutive sends may be delivered as one event with count > 1 only if the receiver is not draining; each event counts at least one send.',
  body: {
    port: req(PORT, 'The receiver\'s local port.'),
    count: req(U32, 'Sends coalesced into this event (at least 1).'),
  },
});
