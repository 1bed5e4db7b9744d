/**
 * The WebSocket listener: loopback, no per-message compression, and a
 * maximum payload equal to the maximum frame size, so that ws itself closes
 * a connection that sends a larger frame with status 1009 before it is
 * buffered whole.
 */
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

/** A listening server and its URL. */
export interface Listener {
  readonly wss: WebSocketServer;
  readonly url: string;
}

/** Starts listening; resolves once the port is bound. */
export function listen(opts: { host: string; port: number; maxPayload: number }, onConnection: (ws: WebSocket) => void, log: (line: string) => void): Promise<Listener> {
  return new Promise((resolve, reject) => {
    const wss = new WebSocketServer({
      host: opts.host,
      port: opts.port,
      perMessageDeflate: false,
      maxPayload: opts.maxPayload,
      clientTracking: true,
    });
    const onError = (e: Error) => reject(e);
    wss.once('error', onError);
    wss.once('listening', () => {
      wss.off('error', onError);
      wss.on('error', (e) => log(`server error: ${e.message}`));
      const addr = wss.address() as AddressInfo;
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      resolve({ wss, url: `ws://${host}:${addr.port}` });
    });
    wss.on('wsClientError', (e) => log(`client handshake error: ${e.message}`));
    wss.on('connection', (ws) => {
      try {
        onConnection(ws);
      } catch (e) {
        log(`cannot accept a connection: ${(e as Error)?.stack ?? String(e)}`);
        ws.terminate();
      }
    });
  });
}

/** Stops accepting and closes the listening socket (open connections are the caller's). */
export function stopListening(wss: WebSocketServer): Promise<void> {
  return new Promise((resolve) => wss.close(() => resolve()));
}
