/**
 * The WebSocket listener: loopback, no per-message compression, and the
 * admission rules of SPEC.md section 3.7 that hold before a connection has
 * authenticated:
 *
 * - one deadline from the TCP accept for the WebSocket handshake and HELLO
 *   together: a connection that has not completed HELLO by then is closed
 *   (1008 once upgraded, dropped before), so a slow handshake is cut off too;
 * - at most `maxUnauthenticated` connections at once that have not completed
 *   HELLO; a TCP connection beyond that is dropped at accept;
 * - one frame of a connection per turn of the event loop, so that a domain
 *   streaming frames cannot hold the loop for more than one frame at a time;
 * - a maximum payload equal to the maximum frame size, so that ws itself
 *   closes a connection that sends a larger frame with status 1009 before it
 *   is buffered whole (the session lowers it to a HELLO-sized frame until
 *   HELLO succeeds).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

/** A listening server and its URL. */
export interface Listener {
  readonly wss: WebSocketServer;
  readonly http: Server;
  readonly url: string;
  /** TCP connections not (yet) upgraded to WebSocket: dropped when listening stops. */
  readonly raw: Set<Socket>;
}

/** Admission options. */
export interface ListenOptions {
  host: string;
  port: number;
  maxPayload: number;
  /** Time from the TCP accept to a completed HELLO. */
  helloDeadlineMs: number;
  /** Most connections at once that have not completed HELLO. */
  maxUnauthenticated: number;
}

/**
 * One accepted TCP connection until it authenticates: its deadline, and
 * what to do when the deadline passes (drop the socket, or, once a session
 * owns it, whatever the session says).
 */
export class Admission {
  /** Set by the session: closes its connection politely at the deadline. */
  onExpired: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private settled = false;

  constructor(private readonly socket: Socket, deadlineMs: number, private readonly release: () => void) {
    this.timer = setTimeout(() => this.expire(), deadlineMs);
    this.timer.unref();
    socket.once('close', () => this.settle());
  }

  /** HELLO succeeded: no deadline any more, and the connection no longer counts as unauthenticated. */
  authenticated(): void {
    this.settle();
  }

  private expire(): void {
    if (this.settled) return;
    if (this.onExpired) this.onExpired();
    else this.socket.destroy();
  }

  private settle(): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.release();
  }
}

/** Starts listening; resolves once the port is bound. */
export function listen(opts: ListenOptions, onConnection: (ws: WebSocket, admission: Admission) => void, log: (line: string) => void): Promise<Listener> {
  return new Promise((resolve, reject) => {
    const http = createServer();
    const admissions = new WeakMap<Socket, Admission>();
    const raw = new Set<Socket>();
    let unauthenticated = 0;
    http.on('connection', (socket: Socket) => {
      raw.add(socket);
      socket.once('close', () => raw.delete(socket));
      if (unauthenticated >= opts.maxUnauthenticated) {
        log(`dropped a connection at accept: ${unauthenticated} connections have not completed HELLO`);
        socket.destroy();
        return;
      }
      unauthenticated++;
      admissions.set(socket, new Admission(socket, opts.helloDeadlineMs, () => { unauthenticated--; }));
    });
    // Anything but a WebSocket upgrade is not the protocol.
    http.on('request', (_req, res) => {
      res.writeHead(426, { connection: 'close', 'content-type': 'text/plain' });
      res.end('WebSocket only\n');
    });
    // allowSynchronousEvents false: after each frame of a connection ws yields to the event loop before
    // the next one already buffered, so every connection is served between two frames of another (SPEC 3.7).
    const wss = new WebSocketServer({ server: http, perMessageDeflate: false, maxPayload: opts.maxPayload, clientTracking: true, allowSynchronousEvents: false });
    const onError = (e: Error) => reject(e);
    http.once('error', onError);
    http.listen(opts.port, opts.host, () => {
      http.off('error', onError);
      http.on('error', (e) => log(`server error: ${e.message}`));
      wss.on('error', (e) => log(`server error: ${e.message}`));
      const addr = http.address() as AddressInfo;
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      resolve({ wss, http, raw, url: `ws://${host}:${addr.port}` });
    });
    wss.on('wsClientError', (e) => log(`client handshake error: ${e.message}`));
    wss.on('connection', (ws, req) => {
      raw.delete(req.socket as Socket);
      const admission = admissions.get(req.socket as Socket);
      if (!admission) {
        ws.terminate();
        return;
      }
      try {
        onConnection(ws, admission);
      } catch (e) {
        log(`cannot accept a connection: ${(e as Error)?.stack ?? String(e)}`);
        ws.terminate();
      }
    });
  });
}

/** Stops accepting and closes the listening socket (open connections are the caller's). */
export async function stopListening(listener: Pick<Listener, 'wss' | 'http' | 'raw'>): Promise<void> {
  await new Promise<void>((resolve) => listener.wss.close(() => resolve()));
  await new Promise<void>((resolve) => {
    listener.http.close(() => resolve());
    // Sockets still in the handshake would keep close() waiting.
    for (const socket of listener.raw) socket.destroy();
  });
}
