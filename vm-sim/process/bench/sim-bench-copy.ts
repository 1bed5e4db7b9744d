/**
 * The copying baselines of the benchmarks (vm-sim/bench), run inside the
 * VMs: what a design without shared buffers pays to move a buffer's bytes.
 *
 *   bench.memcpy {buf, trials, warmup}             the buffer's bytes copied once into a private, warm buffer
 *                                                  of this process (TypedArray.set; kept for the next call
 *                                                  of the same size) -> samples
 *   bench.copyRouted {dst, buf, trials, warmup}    the buffer's bytes sent once to `dst` as SIM_FRAME_COPY
 *                                                  messages of <= 8 MiB, two in flight, over the routed
 *                                                  path; the end is the last acknowledgement -> samples
 *   bench.wsListen {}                              a raw WebSocket server on loopback (the sending side) -> {port}
 *   bench.wsConnect {port}                         the receiving side connects; it answers every binary
 *                                                  message with its length (4 bytes)
 *   bench.wsCopy {buf, trials, warmup}             the buffer's bytes sent once as one binary frame, no
 *                                                  MessagePack, until the 4-byte acknowledgement -> samples
 *   bench.wsClose {}                               closes this VM's side
 *
 * The raw WebSocket pair runs server -> client so that the bytes travel
 * unmasked (RFC 6455 masks only client frames): the cheapest direction a
 * copying peer could pick.
 */
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { SIM_FRAME_COPY } from '../../../protocol/messages/sim.ts';
import { MAX_ECHO_BYTES } from '../../../protocol/limits.ts';
import { DEFAULT_SEND_BUDGET_BYTES } from '../../../src/hv/options.ts';
import { nowUs } from '../../trace/clock.ts';
import { argInt } from '../commands/args.ts';
import type { CommandHandler, VmContext } from '../commands/commands.ts';
import { windowed } from '../sim/sim-many.ts';
import { simState, viewOf } from '../sim/sim-state.ts';

/** The private buffer bench.memcpy copies into, kept between calls (the bench interleaves one-trial calls with shares). */
let memcpyDst: Uint8Array | undefined;

/** A private buffer of `bytes`, allocated and touched before any timing: the floor is the copy, not the page faults of a fresh buffer. */
function memcpyTarget(bytes: number): Uint8Array {
  if (memcpyDst?.byteLength !== bytes) memcpyDst = new Uint8Array(bytes).fill(1);
  return memcpyDst;
}

/**
 * SIM_FRAME_COPY messages in flight at once, as a well-behaved copying peer keeps them (SPEC 3.7: "a sender
 * SHOULD NOT queue more than the receiver drains"): as many as the backend's default send budget (16 MiB
 * unsent) holds. A new one is sent only once an earlier one was answered, so the destination's unsent bytes
 * at the backend stay below the budget.
 */
const COPY_WINDOW = Math.max(1, Math.floor(DEFAULT_SEND_BUDGET_BYTES / MAX_ECHO_BYTES));

/** Largest raw frame the receiving side accepts (the scale curve's largest buffer fits). */
const WS_MAX_PAYLOAD = 2 ** 31 - 1;

/** This VM's raw WebSocket ends (one pair per run). */
interface WsEnds {
  server?: WebSocketServer;
  /** The sending side's accepted connection. */
  peer?: WebSocket;
  peerReady?: Promise<WebSocket>;
  /** The receiving side's client. */
  client?: WebSocket;
}
const ws: WsEnds = {};

function err(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** Times `fn` `trials` times after `warmup` untimed runs; microseconds. */
async function timed(trials: number, warmup: number, fn: () => Promise<void> | void): Promise<Float64Array> {
  for (let i = 0; i < warmup; i++) await fn();
  const samples = new Float64Array(trials);
  for (let i = 0; i < trials; i++) {
    const t0 = nowUs();
    await fn();
    samples[i] = nowUs() - t0;
  }
  return samples;
}

async function bufferView(ctx: VmContext, buf: unknown): Promise<Uint8Array> {
  return viewOf(simState(ctx).stores.bufs.get(buf));
}

/** Answers SIM_FRAME_COPY in the receiving VM (installed by the sim module's setup). */
export function installCopyHandler(ctx: VmContext): void {
  ctx.kernel.hv.handlePeerRequest(SIM_FRAME_COPY, (body) => ({ received: body.bytes.byteLength }));
}

/** Closes the raw WebSocket ends (the sim module's teardown, and bench.wsClose). */
export async function closeWs(): Promise<void> {
  const closing: Array<Promise<void>> = [];
  for (const sock of [ws.peer, ws.client]) {
    if (sock && sock.readyState !== WebSocket.CLOSED) {
      closing.push(new Promise<void>((resolve) => { sock.once('close', () => resolve()); sock.terminate(); }));
    }
  }
  await Promise.all(closing);
  if (ws.server) await new Promise<void>((resolve) => ws.server!.close(() => resolve()));
  delete ws.server; delete ws.peer; delete ws.peerReady; delete ws.client;
}

/** The commands. */
export const simBenchCopyCommands: Record<string, CommandHandler> = {
  'bench.memcpy': async (ctx, args) => {
    const src = await bufferView(ctx, args.buf);
    const dst = memcpyTarget(src.byteLength);
    const samples = await timed(argInt(args, 'trials', 7), argInt(args, 'warmup', 2), () => { dst.set(src); });
    if (dst[src.byteLength - 1] !== src[src.byteLength - 1]) throw err('ERR_INTERNAL', 'the copy differs from its source');
    return { samples, bytes: src.byteLength };
  },

  'bench.copyRouted': async (ctx, args) => {
    const dst = argInt(args, 'dst');
    const src = await bufferView(ctx, args.buf);
    const chunks: Array<{ offset: number; bytes: Uint8Array }> = [];
    for (let offset = 0; offset < src.byteLength; offset += MAX_ECHO_BYTES) {
      chunks.push({ offset, bytes: src.subarray(offset, Math.min(src.byteLength, offset + MAX_ECHO_BYTES)) });
    }
    let frame = 1;
    const samples = await timed(argInt(args, 'trials', 5), argInt(args, 'warmup', 1), async () => {
      const f = frame++;
      let got = 0;
      // No more in flight than the backend's send budget holds (COPY_WINDOW), or it refuses some (ERR_BACKPRESSURE).
      await windowed(chunks.length, COPY_WINDOW, async (i) => {
        const c = chunks[i]!;
        const ack = await ctx.kernel.hv.peerRequest(SIM_FRAME_COPY, dst, { frame: f, offset: c.offset, bytes: c.bytes }, 120_000);
        got += ack.received;
      }, () => undefined);
      if (got !== src.byteLength) throw err('ERR_INTERNAL', `the peer received ${got} of ${src.byteLength} bytes`);
    });
    return { samples, messages: chunks.length, bytes: src.byteLength };
  },

  'bench.wsListen': async () => {
    if (ws.server) throw err('ERR_STATE', 'a raw WebSocket server is already listening here');
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 64 });
    await new Promise<void>((resolve, reject) => { server.once('listening', resolve); server.once('error', reject); });
    ws.server = server;
    ws.peerReady = new Promise<WebSocket>((resolve) => server.once('connection', (sock) => { ws.peer = sock; resolve(sock); }));
    return { port: (server.address() as AddressInfo).port };
  },

  'bench.wsConnect': async (_ctx, args) => {
    if (ws.client) throw err('ERR_STATE', 'this VM is already connected to a raw WebSocket peer');
    const client = new WebSocket(`ws://127.0.0.1:${argInt(args, 'port')}`, { perMessageDeflate: false, maxPayload: WS_MAX_PAYLOAD });
    await new Promise<void>((resolve, reject) => { client.once('open', resolve); client.once('error', reject); });
    client.on('message', (data: RawData) => {
      const ack = Buffer.alloc(4);
      ack.writeUInt32LE((Array.isArray(data) ? data.reduce((n, b) => n + b.byteLength, 0) : data.byteLength) >>> 0, 0);
      client.send(ack);
    });
    ws.client = client;
    return {};
  },

  'bench.wsCopy': async (ctx, args) => {
    if (!ws.peerReady) throw err('ERR_STATE', 'no raw WebSocket server here: bench.wsListen first');
    const peer = await ws.peerReady;
    const src = await bufferView(ctx, args.buf);
    const oneCopy = (): Promise<void> => new Promise<void>((resolve, reject) => {
      peer.once('message', (data: RawData) => {
        const b = data as Buffer;
        const got = b.byteLength === 4 ? b.readUInt32LE(0) : -1;
        if (got === src.byteLength) resolve(); else reject(err('ERR_INTERNAL', `the peer received ${got} of ${src.byteLength} bytes`));
      });
      peer.send(src, { binary: true }, (e) => { if (e) reject(e); });
    });
    const samples = await timed(argInt(args, 'trials', 5), argInt(args, 'warmup', 1), oneCopy);
    return { samples, bytes: src.byteLength };
  },

  'bench.wsClose': async () => {
    await closeWs();
    return {};
  },
};
