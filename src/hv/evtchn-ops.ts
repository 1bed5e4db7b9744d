/**
 * EVTCHN_* operations over the per-domain port tables (event-channels.ts),
 * with Xen's EVTCHNOP semantics, and delivery of EVTCHN_EVENT.
 */
import { ProtocolError, type RequestOf, type ResponseOf } from '../../protocol/index.ts';
import { EVTCHN_EVENT, type EVTCHN_STATUS } from '../../protocol/messages/evtchn.ts';
import type { HvContext } from './context.ts';
import type { Domain } from './domain.ts';
import { PORT_STATE_NAMES, PortState } from './event-channels.ts';

/** Retry interval for events held back by a receiver that is not draining. */
const FLUSH_INTERVAL_MS = 10;

function aliveDomain(ctx: HvContext, domid: number, field: string): Domain {
  const d = ctx.registry.get(domid);
  if (!d || !d.alive) throw new ProtocolError('ERR_NO_SUCH_DOMAIN', `domain ${domid} does not exist`, field);
  return d;
}

function ownPort(caller: Domain, port: number): number {
  const state = caller.ports.state[port]!;
  if (state === PortState.Closed) throw new ProtocolError('ERR_BAD_ARGUMENT', `port ${port} is not open`, 'body.port');
  return state;
}

/** EVTCHN_ALLOC_UNBOUND: a new port in state unbound that only `remoteDom` may bind. ERR_NO_SUCH_DOMAIN, ERR_LIMIT. */
export function allocUnbound(ctx: HvContext, caller: Domain, remoteDom: number): { port: number } {
  aliveDomain(ctx, remoteDom, 'body.remoteDom');
  const port = caller.ports.alloc(PortState.Unbound, remoteDom, 0);
  if (port === 0) throw new ProtocolError('ERR_LIMIT', `d${caller.domid} has no free event-channel port`);
  return { port };
}

/**
 * EVTCHN_BIND_INTERDOMAIN: binds a new local port to `remotePort` of
 * `remoteDom`, which must be unbound and allocated for the caller
 * (ERR_BAD_ARGUMENT otherwise; ERR_NO_SUCH_DOMAIN if the domain is not
 * alive; ERR_LIMIT if the caller has no free port). Both become interdomain.
 */
export function bindInterdomain(ctx: HvContext, caller: Domain, remoteDom: number, remotePort: number): { localPort: number } {
  const remote = aliveDomain(ctx, remoteDom, 'body.remoteDom');
  if (remote.ports.state[remotePort] !== PortState.Unbound || remote.ports.remoteDom[remotePort] !== caller.domid) {
    throw new ProtocolError('ERR_BAD_ARGUMENT', `port ${remotePort} of d${remoteDom} is not unbound for d${caller.domid}`, 'body.remotePort');
  }
  const localPort = caller.ports.alloc(PortState.Interdomain, remoteDom, remotePort);
  if (localPort === 0) throw new ProtocolError('ERR_LIMIT', `d${caller.domid} has no free event-channel port`);
  remote.ports.state[remotePort] = PortState.Interdomain;
  remote.ports.remotePort[remotePort] = localPort;
  return { localPort };
}

/**
 * EVTCHN_SEND: notifies the peer of an interdomain port with EVTCHN_EVENT
 * {port: the peer's port, count}. ERR_BAD_ARGUMENT if the port is not an
 * interdomain port of the caller. A peer that is dying (its ports are being
 * closed) or has no connection yet loses the notification, as a pending
 * bit nobody will read.
 */
export function send(ctx: HvContext, caller: Domain, port: number): Record<string, never> {
  if (ownPort(caller, port) !== PortState.Interdomain) {
    throw new ProtocolError('ERR_BAD_ARGUMENT', `port ${port} is not interdomain`, 'body.port');
  }
  const peer = ctx.registry.get(caller.ports.remoteDom[port]!);
  if (peer && peer.alive) deliver(ctx, peer, caller.ports.remotePort[port]!);
  return {};
}

/** EVTCHN_CLOSE: frees the port; an interdomain peer port returns to unbound for the caller (Xen). ERR_BAD_ARGUMENT for a closed port. */
export function close(ctx: HvContext, caller: Domain, port: number): Record<string, never> {
  ownPort(caller, port);
  closePort(ctx, caller, port);
  return {};
}

/** EVTCHN_STATUS: the state of one of the caller's ports (a closed port is not an error). */
export function status(caller: Domain, port: number): ResponseOf<typeof EVTCHN_STATUS> {
  const ch = caller.ports;
  const state = ch.state[port] as PortState;
  if (state === PortState.Closed) return { state: 'closed' };
  if (state === PortState.Unbound) return { state: PORT_STATE_NAMES[state], remoteDom: ch.remoteDom[port]! };
  return { state: PORT_STATE_NAMES[state], remoteDom: ch.remoteDom[port]!, remotePort: ch.remotePort[port]! };
}

/** Closes every port of a dying domain; interdomain peers go back to unbound. Returns the number closed. */
export function closeAllPorts(ctx: HvContext, domain: Domain): number {
  const ports = domain.ports.openPorts();
  for (const p of ports) closePort(ctx, domain, p);
  if (domain.ports.flushTimer) clearTimeout(domain.ports.flushTimer);
  domain.ports.flushTimer = undefined;
  return ports.length;
}

function closePort(ctx: HvContext, domain: Domain, port: number): void {
  const ch = domain.ports;
  if (ch.state[port] === PortState.Interdomain) {
    const peer = ctx.registry.get(ch.remoteDom[port]!);
    const peerPort = ch.remotePort[port]!;
    // Only undo the peer's side if it still points back here (it always should).
    if (peer && peer.ports.state[peerPort] === PortState.Interdomain
      && peer.ports.remoteDom[peerPort] === domain.domid && peer.ports.remotePort[peerPort] === port) {
      peer.ports.unbind(peerPort, domain.domid);
    }
  }
  ch.free(port);
}

/**
 * Sends EVTCHN_EVENT to `peer` for its `port`. While the peer's connection
 * holds more than backpressureBytes unsent (or earlier sends on the port
 * are still held), sends are counted instead and delivered later as one
 * event with count = the sends coalesced, like a pending bit with a
 * counter: an event channel is a doorbell, not a queue.
 */
function deliver(ctx: HvContext, peer: Domain, port: number): void {
  const session = peer.session;
  if (!session || !session.isOpen) return;
  const ch = peer.ports;
  if (ch.pendingSends[port]! > 0 || session.conn.bufferedAmount > ctx.opts.backpressureBytes) {
    if (ch.pendingSends[port]! < 0xffffffff) ch.pendingSends[port]!++;
    ch.pendingPorts.add(port);
    scheduleFlush(ctx, peer);
    return;
  }
  session.conn.notify(EVTCHN_EVENT, { port, count: 1 });
}

function scheduleFlush(ctx: HvContext, peer: Domain): void {
  const ch = peer.ports;
  if (ch.flushTimer) return;
  ch.flushTimer = setTimeout(() => {
    ch.flushTimer = undefined;
    const session = peer.session;
    if (!peer.alive || !session || !session.isOpen) return;
    if (session.conn.bufferedAmount > ctx.opts.backpressureBytes) {
      scheduleFlush(ctx, peer);
      return;
    }
    for (const p of [...ch.pendingPorts]) {
      const count = ch.pendingSends[p]!;
      ch.pendingSends[p] = 0;
      ch.pendingPorts.delete(p);
      if (count > 0 && ch.state[p] === PortState.Interdomain) session.conn.notify(EVTCHN_EVENT, { port: p, count });
    }
  }, FLUSH_INTERVAL_MS);
  ch.flushTimer.unref();
}
