/**
 * A WebSocket proxy between the conformance checks and a backend that breaks
 * one rule of SPEC.md at a time, to show that the checks of that rule fail
 * and no others do.
 *
 * Every connection to the proxy gets its own connection to the backend.
 * Frames from the client go through unchanged (the proxy remembers each
 * request's type and body by id); frames from the backend go through the
 * mutation, which may rewrite a frame, hold it back, or send it later.
 */
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { decodeFrame, encodeFrame, MAX_FRAME_BYTES, type Envelope } from '../../protocol/index.ts';

/** What the proxy knows of one client connection. */
export interface ProxiedConnection {
  /** Requests the client sent, by id (type and body), so a mutation can tell what a reply answers. */
  readonly requests: Map<number, { type: string; body: Record<string, unknown> }>;
  /** Sends bytes to the client now. */
  toClient(bytes: Uint8Array): void;
}

/** A mutation of the backend's frames: returns what to send to the client instead (nothing holds the frame back). */
export type Mutation = (env: Envelope, bytes: Uint8Array, conn: ProxiedConnection) => void;

/** The proxy: its URL, how many frames the mutation changed, and close(). */
export interface MutationProxy {
  readonly url: string;
  /** Incremented by mutations when they change something (a mutation that never fires proves nothing). */
  mutated: number;
  close(): Promise<void>;
}

/** Starts a proxy to `upstream` applying `mutation` to every frame the backend sends. */
export async function startProxy(upstream: string, mutation: (proxy: MutationProxy) => Mutation): Promise<MutationProxy> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 2 * MAX_FRAME_BYTES });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('unexpected server address');
  const sockets = new Set<WebSocket>();
  const proxy: MutationProxy = {
    url: `ws://127.0.0.1:${address.port}`,
    mutated: 0,
    async close() {
      for (const s of sockets) s.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const mutate = mutation(proxy);
  server.on('connection', (client) => {
    const backend = new WebSocket(upstream, { perMessageDeflate: false, maxPayload: 2 * MAX_FRAME_BYTES });
    sockets.add(client);
    sockets.add(backend);
    const early: { data: RawData; isBinary: boolean }[] = [];
    const conn: ProxiedConnection = {
      requests: new Map(),
      toClient(bytes) { if (client.readyState === WebSocket.OPEN) client.send(bytes, { binary: true }); },
    };
    client.on('message', (data: RawData, isBinary: boolean) => {
      const bytes = data as Buffer;
      if (isBinary) {
        const r = decodeFrame(bytes);
        if (r.ok && r.env.kind === 'req') conn.requests.set(r.env.id, { type: r.env.type, body: r.env.body });
      }
      if (backend.readyState === WebSocket.OPEN) backend.send(bytes, { binary: isBinary });
      else early.push({ data, isBinary });
    });
    backend.on('open', () => {
      for (const f of early.splice(0)) backend.send(f.data as Buffer, { binary: f.isBinary });
    });
    backend.on('message', (data: RawData, isBinary: boolean) => {
      const bytes = data as Buffer;
      const r = isBinary ? decodeFrame(bytes) : undefined;
      if (!r?.ok) {
        client.send(bytes, { binary: isBinary });
        return;
      }
      mutate(r.env, bytes, conn);
    });
    // Closing either side closes the other with the same code, so close codes (1000, 1001, 1008, 1009) pass through.
    const closeOther = (other: WebSocket) => (code: number, reason: Buffer) => {
      const sendable = code >= 1000 && code < 5000 && code !== 1005 && code !== 1006;
      if (other.readyState === WebSocket.OPEN || other.readyState === WebSocket.CONNECTING) {
        if (sendable) other.close(code, reason); else other.terminate();
      }
    };
    client.on('close', closeOther(backend));
    backend.on('close', closeOther(client));
    client.on('error', () => undefined);
    backend.on('error', () => client.terminate());
  });
  return proxy;
}

/** Passes every frame through unchanged. */
export const passThrough = (): Mutation => (_env, bytes, conn) => conn.toClient(bytes);

/** Re-encodes an envelope the mutation changed (still a valid frame: only values change). */
export function reencode(env: Envelope): Uint8Array {
  return encodeFrame(env);
}
