/** The backend's end of one connection (SPEC.md 5), and either end's transport (SPEC.md 3). */
import { defineMachine, type ValueOf } from '../state-machine.ts';

/** Session states (the backend's end of a connection). */
export const SessionState = {
  AwaitingHello: 'awaiting-hello',
  Active: 'active',
  Closed: 'closed',
} as const;
/** A session state. */
export type SessionState = ValueOf<typeof SessionState>;

/** Events of a session. */
export type SessionEvent = 'hello' | 'closed' | 'domain-died';

/** The backend's end of one connection (SPEC.md 5). */
export const SessionMachine = defineMachine<SessionState, SessionEvent>({
  id: 'session',
  title: 'A session: the backend\'s end of one connection',
  section: '5',
  initial: SessionState.AwaitingHello,
  states: {
    'awaiting-hello': 'connected; any request but HELLO gets ERR_NOT_AUTHENTICATED',
    active: 'HELLO succeeded: it speaks for its domain (or is the control domain, or an observer of it, 9.6) at the negotiated version',
    closed: 'the connection closed, or its domain was destroyed: nothing more is served',
  },
  events: {
    hello: 'HELLO succeeded',
    closed: 'the connection closed (a HELLO refused with ERR_BAD_TOKEN closes it with 1008)',
    'domain-died': 'DOMAIN_DESTROY of its domain: the connection is closed after it',
  },
  transitions: [
    { from: ['awaiting-hello'], event: 'hello', to: 'active' },
    { from: ['awaiting-hello', 'active'], event: 'closed', to: 'closed' },
    { from: ['active'], event: 'domain-died', to: 'closed' },
  ],
});

/** States of either end's WebSocket connection. */
export const ConnectionState = {
  Open: 'open',
  Closing: 'closing',
  Closed: 'closed',
} as const;
/** A connection state. */
export type ConnectionState = ValueOf<typeof ConnectionState>;

/** Events of a connection. */
export type ConnectionEvent = 'close' | 'socket-closed';

/** Either end's WebSocket connection (SPEC.md 3). */
export const ConnectionMachine = defineMachine<ConnectionState, ConnectionEvent>({
  id: 'connection',
  title: 'A connection, at either end',
  section: '3',
  initial: ConnectionState.Open,
  states: {
    open: 'frames flow both ways',
    closing: 'a close was asked (the closing handshake, or a forced close); nothing more is sent, new requests fail with ERR_CLOSED',
    closed: 'the socket closed: every request in flight failed with ERR_CLOSED',
  },
  events: {
    close: 'a graceful close (forced after 2 s without the peer\'s answer) or a forced one',
    'socket-closed': 'the socket closed, by either end',
  },
  transitions: [
    { from: ['open'], event: 'close', to: 'closing' },
    { from: ['open', 'closing'], event: 'socket-closed', to: 'closed' },
  ],
});
