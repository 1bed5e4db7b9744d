/**
 * What the backend's operations need of a connection: the link that a
 * Domain, the registry and the router hold. Session (session.ts) implements
 * it. Declared apart so that imports run one way: session.ts imports the
 * handlers, the handlers import the operations, and the operations reach a
 * connection only through this interface, never by importing the session.
 */
import type { Envelope, ProtocolError } from '../../protocol/index.ts';
import type { RpcConnection } from '../transport/rpc-connection.ts';

/** A connection as the backend's operations see it. */
export interface SessionLink {
  readonly conn: RpcConnection;
  /** The authenticated domain (after HELLO). */
  readonly domid: number | undefined;
  /** Negotiated protocol version. */
  readonly version: number;
  /** True while the session is authenticated and its socket open. */
  readonly isOpen: boolean;
  /** The domain died (destroyed): this connection no longer speaks for it. */
  detachDomain(): void;
  /** Sends PROTOCOL_ERROR about a frame that cannot get an err reply. */
  sendProtocolError(error: ProtocolError, about: Pick<Envelope, 'id' | 'type'>): void;
}
