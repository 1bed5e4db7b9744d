/**
 * Helpers of the backend tests: a Backend per test (closed in afterEach,
 * with a check that none of its shm files remain), the control domain and
 * guests connected through HvClient, a guest's grant table and RAM mapped
 * by the test itself, raw WebSocket peers for hostile input, and waiting
 * for events without sleeping.
 */
import { closeSync, openSync, readdirSync } from 'node:fs';
import { Packr } from 'msgpackr';
import WebSocket from 'ws';
import { afterEach, beforeEach, expect } from 'vitest';
import {
  decodeFrame, encodeFrame, MAX_FRAME_BYTES, ProtocolError,
  type Envelope, type EventDecl, type EventOf, type RequestOf,
} from '../../protocol/index.ts';
import {
  GNTTAB_COPY, GNTTAB_COPY_V2, GNTTAB_MAP_GRANT_REF, GNTTAB_MAP_GRANT_REF_V2, GNTTAB_UNMAP_GRANT_REF, GNTTAB_UNMAP_GRANT_REF_V2,
} from '../../protocol/messages/grant.ts';
import { HvClient } from '../../src/transport/hv-client.ts';
import { Backend, type BackendOptions, type DomainCreated } from '../../src/hv/backend.ts';
import { GrantTableView } from '../../src/memory/grant-table-view.ts';
import { nativeMem } from '../../src/memory/native.ts';

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  // Clients first (LIFO), then backends; then nothing of theirs may remain.
  const tags: string[] = [];
  for (const fn of cleanups.splice(0).reverse()) await fn();
  for (const hv of backends.splice(0)) {
    tags.push(hv.runTag);
    await hv.close();
  }
  const left = readdirSync('/dev/shm').filter((n) => tags.some((t) => n.startsWith(`${t}-`)));
  expect(left).toEqual([]);
});

const backends: Backend[] = [];

/** Starts a backend for this test; afterEach closes it and checks /dev/shm. */
export async function startBackend(opts: BackendOptions = {}): Promise<Backend> {
  const hv = await Backend.start(opts);
  backends.push(hv);
  return hv;
}

/** Registers a cleanup for afterEach. */
export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

/** Connects an HvClient; closes it in afterEach. */
export async function connect(hv: Backend, domid: number, token: string): Promise<HvClient> {
  const client = await HvClient.connect({ url: hv.url, domid, token, caps: ['gnttab.v1'], ...(offeredMaxVersion !== undefined ? { maxVersion: offeredMaxVersion } : {}) });
  onCleanup(() => client.close());
  return client;
}

/** Connects the control domain. */
export function connectControl(hv: Backend): Promise<HvClient> {
  return connect(hv, 0, hv.controlToken);
}

/** A connected guest, with its grant table and RAM mapped by the test (as its process would). */
export interface Guest {
  readonly domid: number;
  readonly created: DomainCreated;
  readonly client: HvClient;
  /** The guest's own view of its grant table. */
  readonly table: GrantTableView;
  /** The memory under `table`, for writing entries the way a misbehaving guest would. */
  readonly tableBuf: ArrayBuffer;
  /** The guest's RAM, read-write. */
  readonly ram: Uint8Array;
}

/** Creates a domain, maps its files, and connects it. */
export async function startGuest(hv: Backend, opts: { name?: string; memPages?: number; maxGrantFrames?: number; connect?: boolean } = {}): Promise<Guest> {
  const created = await hv.createDomain({
    name: opts.name ?? 'guest', memPages: opts.memPages ?? 256,
    ...(opts.maxGrantFrames !== undefined ? { maxGrantFrames: opts.maxGrantFrames } : {}),
  });
  const tableBuf = mapWhole(created.grantTablePath, created.maxGrantFrames);
  const table = new GrantTableView(tableBuf);
  const ramBuf = mapWhole(created.ramPath, opts.memPages ?? 256);
  const client = opts.connect === false ? (undefined as unknown as HvClient) : await connect(hv, created.domid, created.token);
  return { domid: created.domid, created, client, table, tableBuf, ram: new Uint8Array(ramBuf) };
}

/** Maps a whole shm file read-write (unmapped in afterEach, after the clients close). */
export function mapWhole(path: string, pages: number): ArrayBuffer {
  const fd = openSync(path, 'r+');
  try {
    const buf = nativeMem.mapRange(fd, 0, pages, true);
    onCleanup(() => { nativeMem.unmap(buf); });
    return buf;
  } finally {
    closeSync(fd);
  }
}

/** Resolves with the next event of this type (and predicate) that the client receives. */
export function nextEvent<D extends EventDecl>(client: HvClient, decl: D, pred: (body: EventOf<D>) => boolean = () => true): Promise<EventOf<D>> {
  return new Promise((resolve) => {
    const off = client.onEventOf(decl, (body) => {
      if (!pred(body)) return;
      off();
      resolve(body);
    });
  });
}

/** Rejection code of a promise (fails the test if it resolves). */
export async function errorCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ProtocolError) return e.code;
    throw e;
  }
  throw new Error('expected a rejection');
}

/** A raw protocol peer: sends any bytes, sees every frame and the close code. */
export class RawPeer {
  readonly ws: WebSocket;
  readonly closed: Promise<number>;
  private readonly frames: Envelope[] = [];
  private readonly waiters: ((env: Envelope) => void)[] = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) => ws.once('close', (code: number) => resolve(code)));
    ws.on('message', (data: Buffer) => {
      const r = decodeFrame(data);
      if (!r.ok) throw new Error(`backend sent an undecodable frame: ${r.error.message}`);
      const w = this.waiters.shift();
      if (w) w(r.env);
      else this.frames.push(r.env);
    });
    ws.on('error', () => undefined);
  }

  /** Opens a connection. */
  static async open(url: string): Promise<RawPeer> {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: MAX_FRAME_BYTES });
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
    const peer = new RawPeer(ws);
    onCleanup(() => { peer.ws.terminate(); });
    return peer;
  }

  /** Opens a connection and completes HELLO. */
  static async hello(url: string, domid: number, token: string): Promise<RawPeer> {
    const peer = await RawPeer.open(url);
    peer.send({ v: 1, kind: 'req', type: 'HELLO', id: 1, body: { minVersion: 1, maxVersion: 1, domid, token, caps: [] } });
    const reply = await peer.next();
    if (reply.kind !== 'res') throw new Error(`HELLO failed: ${JSON.stringify(reply.body)}`);
    return peer;
  }

  /** Sends an envelope, encoded without validation of the body where the declaration would refuse it. */
  send(env: Envelope): void {
    this.ws.send(encodeFrame(env));
  }

  /** Sends raw bytes. */
  sendBytes(bytes: Uint8Array | string): void {
    this.ws.send(bytes, { binary: typeof bytes !== 'string' });
  }

  /** The next frame from the backend. */
  next(): Promise<Envelope> {
    const f = this.frames.shift();
    if (f) return Promise.resolve(f);
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

/** Publishes grants 1..n of `granter` for `grantee`, frame = ref (so frames must exist). */
export function publishRange(table: GrantTableView, first: number, n: number, grantee: number, readonly: boolean, frameOf: (ref: number) => number = (r) => r): number[] {
  const refs: number[] = [];
  for (let r = first; r < first + n; r++) {
    table.publish(r, grantee, frameOf(r), readonly);
    refs.push(r);
  }
  return refs;
}

const rawPackr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false, bundleStrings: false, variableMapSize: true });

/** Packs any value as plain MessagePack, without the codec's validation (hostile frames). */
export function packRaw(value: unknown): Uint8Array {
  return rawPackr.pack(value);
}

/** Protocol versions the grant tests run over. */
export const VERSIONS = [1, 2] as const;

let offeredMaxVersion: number | undefined;

/** In a describe block: every client connected by connect() offers at most `version` (SPEC.md 5, 15). */
export function useVersion(version: number): void {
  beforeEach(() => { offeredMaxVersion = version; });
  afterEach(() => { offeredMaxVersion = undefined; });
}

/** The map body as tests write it (arrays), whatever version the client speaks. */
interface MapBody { dom: number; flags: number; refs: number[] }
/** The map reply as tests read it (arrays). */
export interface MapReplyArrays { status: number[]; handle: number[]; frame: number[]; ramPath: string }

/**
 * GNTTAB_MAP_GRANT_REF in the client's version: arrays in v1, packed in v2
 * (converted here both ways, so one test checks both encodings of the same rules).
 */
export async function mapRefs(client: HvClient, body: MapBody): Promise<MapReplyArrays> {
  if (client.version < 2) return client.call(GNTTAB_MAP_GRANT_REF, body);
  const r = await client.call(GNTTAB_MAP_GRANT_REF_V2, { ...body, refs: Uint32Array.from(body.refs) });
  expect(r.status).toBeInstanceOf(Int16Array);
  return { status: Array.from(r.status), handle: Array.from(r.handle), frame: Array.from(r.frame), ramPath: r.ramPath };
}

/** GNTTAB_UNMAP_GRANT_REF in the client's version (see mapRefs). */
export async function unmapHandles(client: HvClient, body: { handles: number[] }): Promise<{ status: number[] }> {
  if (client.version < 2) return client.call(GNTTAB_UNMAP_GRANT_REF, body);
  const r = await client.call(GNTTAB_UNMAP_GRANT_REF_V2, { handles: Uint32Array.from(body.handles) });
  return { status: Array.from(r.status) };
}

/** GNTTAB_COPY in the client's version (see mapRefs). */
export async function copyOps(client: HvClient, body: RequestOf<typeof GNTTAB_COPY>): Promise<{ status: number[] }> {
  if (client.version < 2) return client.call(GNTTAB_COPY, body);
  const r = await client.call(GNTTAB_COPY_V2, body);
  return { status: Array.from(r.status) };
}
