/**
 * A raw protocol connection for the stress suite's hostile domains: bytes
 * out exactly as given, every frame in checked by the reference codec.
 *
 * `exchange` sends one frame and then a PING barrier and returns everything
 * the backend said before the barrier's answer. The backend reads the frames
 * of one connection in order, so every refusal of the frame (made while
 * reading it) comes before the barrier's answer; a reply from a handler that
 * yields (SPEC 6: replies in any order) may come after it, and the caller
 * waits for that one by id.
 */
import { Packr } from 'msgpackr';
import WebSocket from 'ws';
import { decodeFrame, encodeFrame, MAX_FRAME_BYTES, type Envelope } from '../../protocol/index.ts';

const rawPackr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false, bundleStrings: false, variableMapSize: true });

/** Packs any value as plain MessagePack without validation (a bigint becomes an int64). */
export function packRaw(value: unknown): Uint8Array {
  return rawPackr.pack(value);
}

/** What the backend said about one frame. */
export interface Exchange {
  /** Frames received before the barrier's answer (decoded; undecodable ones are in `bad`). */
  frames: Envelope[];
  /** Frames from the backend that the reference codec refuses (SPEC violations), as descriptions. */
  bad: string[];
  /** Close code, if the connection closed instead of answering the barrier. */
  closed?: number;
  /** True if neither the barrier's answer nor a close came within the deadline. */
  stalled?: boolean;
}

/** Barrier ids are taken from the top of the id space; hostile frames use other ids. */
const BARRIER_BASE = 0xfff00000;

/** A raw WebSocket connection to the backend. */
export class RawClient {
  readonly ws: WebSocket;
  closeCode: number | undefined;
  readonly closed: Promise<number>;
  private inbox: Envelope[] = [];
  private bad: string[] = [];
  private wake: (() => void) | undefined;
  private barrier = 0;
  /** Protocol version negotiated by connect() (1 until then): the barrier PING is sent in it. */
  version = 1;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) => ws.once('close', (code: number) => {
      this.closeCode = code;
      this.wake?.();
      resolve(code);
    }));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) {
        this.bad.push('a text frame from the backend');
      } else {
        const r = decodeFrame(data);
        if (r.ok) this.inbox.push(r.env);
        else this.bad.push(`an undecodable frame from the backend: ${r.error.code}: ${r.error.message}`);
      }
      this.wake?.();
    });
    ws.on('error', () => undefined);
  }

  /** Opens a connection; rejects if the backend refuses or drops it. */
  static open(url: string): Promise<RawClient> {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 2 * MAX_FRAME_BYTES });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new RawClient(ws)));
      ws.once('error', reject);
      ws.once('close', () => reject(new Error('closed before open')));
    });
  }

  /** Opens a connection and completes HELLO in protocol `version` (1 or 2). */
  static async connect(url: string, domid: number, token: string, version = 1): Promise<RawClient> {
    const c = await RawClient.open(url);
    c.send({ v: 1, kind: 'req', type: 'HELLO', id: 1, body: { minVersion: version, maxVersion: version, domid, token, caps: ['gnttab.v1'] } });
    const reply = await c.next((e) => e.id === 1 && (e.kind === 'res' || e.kind === 'err'), 5000);
    if (!reply || reply.kind !== 'res') {
      c.ws.terminate();
      throw new Error(`HELLO as d${domid} failed: ${JSON.stringify(reply?.body)}`);
    }
    c.version = version;
    return c;
  }

  get isOpen(): boolean {
    return this.closeCode === undefined && this.ws.readyState === WebSocket.OPEN;
  }

  send(env: Envelope): void {
    this.sendBytes(encodeFrame(env));
  }

  sendBytes(bytes: Uint8Array): void {
    if (this.isOpen) this.ws.send(bytes, { binary: true });
  }

  /** The next received frame matching `pred`, or undefined at the deadline or close. */
  async next(pred: (e: Envelope) => boolean, deadlineMs: number): Promise<Envelope | undefined> {
    const until = Date.now() + deadlineMs;
    for (;;) {
      const at = this.inbox.findIndex(pred);
      if (at >= 0) return this.inbox.splice(at, 1)[0];
      if (this.closeCode !== undefined || Date.now() >= until) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, until - Date.now()));
        this.wake = () => { clearTimeout(timer); this.wake = undefined; resolve(); };
      });
    }
  }

  /** Sends `bytes`, then a PING barrier; returns what came before the barrier's answer. */
  async exchange(bytes: Uint8Array, deadlineMs = 10_000): Promise<Exchange> {
    this.inbox = [];
    this.bad = [];
    const id = BARRIER_BASE + (this.barrier++ % 0xfffff);
    this.sendBytes(bytes);
    this.send({ v: this.version, kind: 'req', type: 'PING', id, body: { nonce: id } });
    const isBarrier = (e: Envelope) => e.type === 'PING' && e.id === id && (e.kind === 'res' || e.kind === 'err');
    const got = await this.next(isBarrier, deadlineMs);
    const frames = this.inbox;
    this.inbox = [];
    const out: Exchange = { frames, bad: this.bad };
    if (!got) {
      if (this.closeCode !== undefined) out.closed = this.closeCode;
      else out.stalled = true;
    }
    return out;
  }

  terminate(): void {
    this.ws.terminate();
  }
}
