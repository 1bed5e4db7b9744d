/**
 * Records every protocol frame a process sends or receives, on every
 * RpcConnection of the process, without touching the transport's code: it
 * wraps two public entry points of the class, sendEnvelope (every frame
 * out goes through it) and the 'frame' event (emitted for every frame in,
 * before it is dispatched). Installed once per process, only when tracing,
 * so an untraced run pays nothing.
 *
 * Roles: a 'client' process (a VM, the launcher's control connection)
 * speaks for the domain its HELLO names; a 'server' process (the backend)
 * learns each connection's domain from the HELLO it receives. From that and
 * per-connection frame counts both ends derive the same flow key for a
 * frame (see WireRecord.flow).
 */
import { EventEmitter } from 'node:events';
import type { Envelope } from '../../protocol/envelope.ts';
import { RpcConnection } from '../../src/transport/rpc-connection.ts';
import { nowUs } from './clock.ts';
import { keyFields } from './key-fields.ts';
import type { WireRecord } from './records.ts';

/** Which end of the connections this process holds. */
export type TapRole = 'client' | 'server';

interface ConnTap {
  readonly conn: string;
  dom: number | undefined;
  sent: number;
  received: number;
}

interface Tap {
  role: TapRole;
  sink: (rec: WireRecord) => void;
  conns: WeakMap<RpcConnection, ConnTap>;
  nextConn: number;
  /** Server: the frame being handled right now (synchronous forwarding continues its flow). */
  current: WireRecord | undefined;
}

let tap: Tap | undefined;
/** True while a tapped sendEnvelope runs: its frame is recorded there, not again by the reply hook. */
let sending = false;
/** Connections whose reply path is hooked (hookReplies). */
const hooked = new WeakSet<RpcConnection>();

type FrameObserver = (dir: 'in' | 'out', env: Envelope, bytes: number) => void;

/**
 * A reply to a request is encoded and sent without sendEnvelope (so that a
 * reply failing its own declaration can still be answered with an error);
 * the connection reports it to its frame observer. This wraps that observer
 * slot of one connection, keeping whatever observer the process installs,
 * and records the replies that did not go through sendEnvelope.
 */
function hookReplies(conn: RpcConnection): void {
  if (hooked.has(conn)) return;
  hooked.add(conn);
  const slot = conn as unknown as { observer?: FrameObserver };
  let inner = slot.observer;
  const wrapped: FrameObserver = (dir, env, bytes) => {
    inner?.(dir, env, bytes);
    const t = tap;
    if (!t || sending || dir !== 'out' || env.kind !== 'res') return;
    const c = connTap(t, conn);
    t.sink(record(t, c, 'out', env, nowUs(), ++c.sent, undefined));
  };
  Object.defineProperty(conn, 'observer', { configurable: true, get: () => wrapped, set: (v: FrameObserver | undefined) => { inner = v; } });
}

/**
 * Starts recording frames into `sink`. Idempotent per process (a second
 * call replaces the sink and role). Returns a function that stops recording.
 */
export function installWireTap(role: TapRole, sink: (rec: WireRecord) => void): () => void {
  if (tap) {
    tap.role = role;
    tap.sink = sink;
  } else {
    tap = { role, sink, conns: new WeakMap(), nextConn: 1, current: undefined };
    patch();
  }
  const mine = tap;
  return () => { if (tap === mine) mine.sink = () => undefined; };
}

function connTap(t: Tap, conn: RpcConnection): ConnTap {
  let c = t.conns.get(conn);
  if (!c) {
    c = { conn: `c${t.nextConn++}`, dom: undefined, sent: 0, received: 0 };
    t.conns.set(conn, c);
  }
  return c;
}

function helloDomid(env: Envelope): number | undefined {
  const d = (env.body as { domid?: unknown }).domid;
  return env.type === 'HELLO' && env.kind === 'req' && typeof d === 'number' ? d : undefined;
}

function record(t: Tap, c: ConnTap, dir: 'in' | 'out', env: Envelope, ts: number, seq: number, via: string | undefined): WireRecord {
  // Client out and server in travel "up" the connection; the rest "down".
  const up = (t.role === 'client') === (dir === 'out');
  const info = keyFields(env.body);
  const rec: WireRecord = {
    k: 'w', ts, pid: process.pid, dir, conn: c.conn, dom: c.dom,
    flow: `${up ? 'u' : 'd'}:${c.dom ?? '?'}:${seq}`,
    kind: env.kind, type: env.type, id: env.id,
    ...(via !== undefined ? { via } : {}),
    ...(env.src !== undefined ? { src: env.src } : {}),
    ...(env.dst !== undefined ? { dst: env.dst } : {}),
    ...(env.kind === 'err' && typeof (env.body as { code?: unknown }).code === 'string' ? { code: (env.body as { code: string }).code } : {}),
    ...(info ? { info } : {}),
  };
  return rec;
}

function patch(): void {
  const proto = RpcConnection.prototype;
  const send = proto.sendEnvelope;
  proto.sendEnvelope = function tappedSend(this: RpcConnection, env: Envelope): void {
    const ts = nowUs();
    hookReplies(this);
    sending = true;
    try {
      send.call(this, env);
    } finally {
      sending = false;
    }
    // Counted only once sent: a frame that failed to encode never reached the peer.
    const t = tap;
    if (!t) return;
    const c = connTap(t, this);
    if (t.role === 'client' && c.dom === undefined) c.dom = helloDomid(env);
    const seq = ++c.sent;
    // The backend stamps src only on what it routes for a domain: those continue the frame being handled.
    const via = t.role === 'server' && env.src !== undefined ? t.current?.flow : undefined;
    t.sink(record(t, c, 'out', env, ts, seq, via));
  };
  const emit = EventEmitter.prototype.emit;
  proto.emit = function tappedEmit(this: RpcConnection, event: string | symbol, ...args: unknown[]): boolean {
    const t = tap;
    if (event === 'frame' && t) {
      hookReplies(this);
      const env = args[0] as Envelope;
      const c = connTap(t, this);
      if (t.role === 'server' && c.dom === undefined) c.dom = helloDomid(env);
      const rec = record(t, c, 'in', env, nowUs(), ++c.received, undefined);
      t.sink(rec);
      // The frame is handled synchronously from here (forwarding included); clear once that is over.
      t.current = rec;
      queueMicrotask(() => { if (t.current === rec) t.current = undefined; });
    }
    return emit.call(this, event, ...args);
  };
}
