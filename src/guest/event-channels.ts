/**
 * The guest's event channels (EVTCHNOP_*): allocate an unbound port for a
 * peer, bind to a peer's port, send, close, and deliver EVTCHN_EVENT to the
 * listeners of each local port.
 */
import { EVTCHN_ALLOC_UNBOUND, EVTCHN_BIND_INTERDOMAIN, EVTCHN_CLOSE, EVTCHN_EVENT, EVTCHN_SEND, EVTCHN_STATUS } from '../../protocol/messages/evtchn.ts';
import type { ResponseOf } from '../../protocol/message.ts';
import type { HvClient } from '../transport/hv-client.ts';
import { isConnectionClosed } from './hypercalls.ts';

/** Called with the number of sends an event carries (at least 1). */
export type EventListener = (count: number) => void;

/** A port's state as the backend reports it. */
export type PortStatus = ResponseOf<typeof EVTCHN_STATUS>;

interface Waiter {
  atLeast: number;
  resolve: () => void;
}

interface PortInfo {
  listeners: Set<EventListener>;
  /** Sends received on the port since it opened. */
  received: number;
  waiters: Waiter[];
}

/** Event channels of one domain. */
export class EventChannels {
  private readonly hv: HvClient;
  private readonly ports = new Map<number, PortInfo>();
  private readonly unsubscribe: () => void;

  constructor(hv: HvClient) {
    this.hv = hv;
    this.unsubscribe = hv.onEventOf(EVTCHN_EVENT, (body) => this.deliver(body.port, body.count));
  }

  /** Local ports open now. */
  get openPorts(): number[] {
    return [...this.ports.keys()];
  }

  /** Allocates a port that only `remoteDom` may bind. */
  async allocUnbound(remoteDom: number): Promise<number> {
    const { port } = await this.hv.call(EVTCHN_ALLOC_UNBOUND, { remoteDom });
    this.track(port);
    return port;
  }

  /** Binds a new local port to `remoteDom`'s unbound port; resolves with the local port. */
  async bindInterdomain(remoteDom: number, remotePort: number): Promise<number> {
    const { localPort } = await this.hv.call(EVTCHN_BIND_INTERDOMAIN, { remoteDom, remotePort });
    this.track(localPort);
    return localPort;
  }

  /** Notifies the peer bound to `port`. */
  async send(port: number): Promise<void> {
    await this.hv.call(EVTCHN_SEND, { port });
  }

  /** The backend's view of a port. */
  status(port: number): Promise<PortStatus> {
    return this.hv.call(EVTCHN_STATUS, { port });
  }

  /** Closes a port; its listeners are dropped and its waiters never resolve. */
  async close(port: number): Promise<void> {
    this.ports.delete(port);
    await this.hv.call(EVTCHN_CLOSE, { port });
  }

  /** Adds a listener on a local port; returns a function that removes it. */
  listen(port: number, listener: EventListener): () => void {
    const info = this.track(port);
    info.listeners.add(listener);
    return () => { info.listeners.delete(listener); };
  }

  /** Sends received on `port` since it was opened. */
  received(port: number): number {
    return this.ports.get(port)?.received ?? 0;
  }

  /** Resolves once `port` has received at least `atLeast` sends in total. */
  waitForEvents(port: number, atLeast: number): Promise<void> {
    const info = this.track(port);
    if (info.received >= atLeast) return Promise.resolve();
    return new Promise((resolve) => info.waiters.push({ atLeast, resolve }));
  }

  /** Closes every open port (shutdown). A closed connection counts as closed: the backend closes a dead domain's ports. */
  async closeAll(): Promise<void> {
    const ports = [...this.ports.keys()];
    this.ports.clear();
    this.unsubscribe();
    await Promise.all(ports.map(async (port) => {
      try {
        await this.hv.call(EVTCHN_CLOSE, { port });
      } catch (e) {
        if (!isConnectionClosed(e)) throw e;
      }
    }));
  }

  private track(port: number): PortInfo {
    let info = this.ports.get(port);
    if (!info) {
      info = { listeners: new Set(), received: 0, waiters: [] };
      this.ports.set(port, info);
    }
    return info;
  }

  private deliver(port: number, count: number): void {
    const info = this.ports.get(port);
    if (!info) return;
    info.received += count;
    // Waiters first: a throwing listener must not strand them.
    const ready = info.waiters.filter((w) => info.received >= w.atLeast);
    info.waiters = info.waiters.filter((w) => info.received < w.atLeast);
    for (const w of ready) w.resolve();
    for (const l of [...info.listeners]) l(count);
  }
}
