/**
 * Event-channel ports of one domain (Xen's EVTCHNOP_* model).
 *
 * Port state machine, per port p of domain D (ports 1..4095; 0 is never
 * allocated, as in Xen where port 0 is reserved):
 *
 *   closed --alloc_unbound(R)--> unbound(R)            only R may bind
 *   unbound(R) --R: bind_interdomain(D, p)--> interdomain(R, q)
 *   interdomain(R, q) --D: close(p)--> closed;   R's q --> unbound(D)
 *   interdomain(R, q) --R dies-->      unbound(R)  (R's ports are closed)
 *   unbound(R) --D: close(p)--> closed
 *
 * Typed arrays indexed by port; a domain has at most 4095 ports.
 */

/** Port states, with the values EVTCHNOP_status uses (Xen: closed 0, unbound 1, interdomain 2). */
export const PortState = { Closed: 0, Unbound: 1, Interdomain: 2 } as const;
/** A port state value. */
export type PortState = (typeof PortState)[keyof typeof PortState];

/** Highest port number. */
export const MAX_PORT = 4095;

/** Names of the states on the wire (EVTCHN_STATUS). */
export const PORT_STATE_NAMES = ['closed', 'unbound', 'interdomain'] as const;

/** The ports of one domain. */
export class EventChannels {
  /** State of each port. */
  readonly state = new Uint8Array(MAX_PORT + 1);
  /** unbound: the domain allowed to bind; interdomain: the peer. */
  readonly remoteDom = new Uint16Array(MAX_PORT + 1);
  /** interdomain: the peer's port. */
  readonly remotePort = new Uint16Array(MAX_PORT + 1);
  /** Sends not yet delivered because this domain's connection was not draining (coalesced, see EVTCHN_EVENT). */
  readonly pendingSends = new Uint32Array(MAX_PORT + 1);
  /** Ports with pendingSends > 0. */
  readonly pendingPorts = new Set<number>();
  /** Timer that retries delivery of pendingSends. */
  flushTimer: NodeJS.Timeout | undefined;
  /** Open (not closed) ports. */
  open = 0;
  private hint = 1;

  /** Allocates the lowest closed port, or returns 0 when all 4095 are open. */
  alloc(state: PortState, remoteDom: number, remotePort: number): number {
    if (this.open >= MAX_PORT) return 0;
    let p = this.hint;
    while (this.state[p] !== PortState.Closed) p = p >= MAX_PORT ? 1 : p + 1;
    this.state[p] = state;
    this.remoteDom[p] = remoteDom;
    this.remotePort[p] = remotePort;
    this.open++;
    this.hint = p >= MAX_PORT ? 1 : p + 1;
    return p;
  }

  /** Closes a port (whatever its state). */
  free(port: number): void {
    if (this.state[port] === PortState.Closed) return;
    this.state[port] = PortState.Closed;
    this.remoteDom[port] = 0;
    this.remotePort[port] = 0;
    this.pendingSends[port] = 0;
    this.pendingPorts.delete(port);
    this.open--;
    if (port < this.hint) this.hint = port;
  }

  /** Puts an interdomain port back to unbound, awaiting a new binding from `remoteDom`. */
  unbind(port: number, remoteDom: number): void {
    this.state[port] = PortState.Unbound;
    this.remoteDom[port] = remoteDom;
    this.remotePort[port] = 0;
    this.pendingSends[port] = 0;
    this.pendingPorts.delete(port);
  }

  /** Open ports, ascending. */
  openPorts(): number[] {
    const out: number[] = [];
    for (let p = 1; p <= MAX_PORT && out.length < this.open; p++) if (this.state[p] !== PortState.Closed) out.push(p);
    return out;
  }
}
