/**
 * A WebSocket client written on a bare TCP socket (RFC 6455 framing, masked
 * client frames), for the tests that need what `ws` does not let a client
 * do: answer the close handshake and keep the TCP connection open.
 */
import { randomBytes } from 'node:crypto';
import { createConnection, type Socket } from 'node:net';

/** A server frame: its opcode and payload. */
export interface RawFrame {
  opcode: number;
  payload: Buffer;
}

/** A TCP socket upgraded to WebSocket by hand. */
export class RawSocketClient {
  private buffered = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  private ended = false;

  private constructor(private readonly sock: Socket) {
    sock.on('data', (d: Buffer) => { this.buffered = Buffer.concat([this.buffered, d]); this.wake?.(); });
    sock.on('end', () => { this.ended = true; this.wake?.(); });
    sock.on('error', () => undefined);
  }

  /** Connects to `url` (ws://host:port) and completes the HTTP upgrade. */
  static async open(url: string): Promise<RawSocketClient> {
    const u = new URL(url);
    // allowHalfOpen: the server's FIN after its close frame does not end our side.
    const sock = createConnection({ host: u.hostname, port: Number(u.port), allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
    const c = new RawSocketClient(sock);
    sock.write(`GET / HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`);
    const end = await c.until(() => c.buffered.indexOf('\r\n\r\n'));
    const head = c.buffered.subarray(0, end).toString();
    if (!head.startsWith('HTTP/1.1 101')) throw new Error(`upgrade refused: ${head.split('\r\n')[0]}`);
    c.buffered = c.buffered.subarray(end + 4);
    return c;
  }

  /** Sends one masked frame (opcode 0x2 binary, 0x8 close). */
  send(opcode: number, payload: Uint8Array): void {
    const n = payload.length;
    const head = n < 126 ? Buffer.from([0x80 | opcode, 0x80 | n]) : Buffer.from([0x80 | opcode, 0x80 | 126, n >> 8, n & 0xff]);
    if (n > 0xffff) throw new Error('RawSocketClient sends frames of at most 65,535 bytes');
    const mask = randomBytes(4);
    const body = Buffer.from(payload);
    for (let i = 0; i < n; i++) body[i]! ^= mask[i & 3]!;
    this.sock.write(Buffer.concat([head, mask, body]));
  }

  /** Sends a close frame with `code`. */
  sendClose(code: number): void {
    this.send(0x8, Buffer.from([code >> 8, code & 0xff]));
  }

  /** The next frame from the server. */
  async next(): Promise<RawFrame> {
    const size = await this.until(() => frameSize(this.buffered));
    const frame = parseFrame(this.buffered.subarray(0, size));
    this.buffered = this.buffered.subarray(size);
    return frame;
  }

  /** Closes the TCP connection at once. */
  destroy(): void {
    this.sock.destroy();
  }

  /** Waits until `found` gives an index or size >= 0 over what was received. */
  private async until(found: () => number): Promise<number> {
    for (;;) {
      const at = found();
      if (at >= 0) return at;
      if (this.ended) throw new Error('the server ended the connection');
      await new Promise<void>((resolve) => { this.wake = resolve; });
      this.wake = undefined;
    }
  }
}

/** The byte size of the first complete frame in `b`, or -1. */
function frameSize(b: Buffer): number {
  if (b.length < 2) return -1;
  const len7 = b[1]! & 0x7f;
  const head = len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
  if (b.length < head) return -1;
  const len = len7 === 126 ? b.readUInt16BE(2) : len7 === 127 ? Number(b.readBigUInt64BE(2)) : len7;
  return b.length >= head + len ? head + len : -1;
}

function parseFrame(b: Buffer): RawFrame {
  const len7 = b[1]! & 0x7f;
  const head = len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
  return { opcode: b[0]! & 0x0f, payload: b.subarray(head) };
}
