/**
 * The hostile classes of the stress suite. Each runs for a bounded number of
 * inputs and a bounded time against a live backend, from connections of its
 * own (never the legitimate domains'), and reports its inputs and every
 * answer that disagrees with SPEC.md; single-frame findings carry the frame
 * so that main.ts can add them to the regression corpus.
 */
import { createConnection } from 'node:net';
import { readFileSync } from 'node:fs';
import { GNTMAP, MAX_FRAME_BYTES, MAX_HELLO_FRAME_BYTES, type Envelope } from '../../protocol/index.ts';
import { fromJsonValue } from '../../protocol/tools/vectors.ts';
import { decoded, disagreement, expectedAnswer, type Expected } from './oracle.ts';
import { packRaw, RawClient } from './raw-client.ts';

/** A finding: an answer that disagrees with SPEC.md (or a stall). */
export interface Finding {
  what: string;
  /** The single frame that caused it, when there is one. */
  frame?: Uint8Array;
  state?: 'authenticated' | 'unauthenticated';
  /** Protocol version of the connection it was sent on (absent: 1). */
  version?: number;
  expected?: Expected;
}

/** What a class needs from the driver. */
export interface ClassContext {
  readonly url: string;
  /** Legitimate domains: hostile frames must not be routed to them except by the spoofing class. */
  readonly legit: readonly number[];
  /** Creates a fresh hostile domain and connects it (HELLO done, in protocol `version`, default 1). */
  hostile(version?: number): Promise<{ domid: number; client: RawClient }>;
  /** Destroys hostile domains that are still alive. */
  cleanup(): Promise<void>;
  /** True while the class may go on (inputs and time left). */
  more(): boolean;
  /** Counts one input. */
  input(): void;
  /** Records a finding. */
  find(f: Finding): void;
  /** The backend's send budget (bytes). */
  readonly sendBudget: number;
  /** The backend's HELLO deadline (ms). */
  readonly helloTimeoutMs: number;
  /** The backend's RSS now, in bytes. */
  rssNow(): number;
  /** Starts measuring the backend's peak RSS afresh (the phase's peak keeps what came before). */
  startPeak(): void;
  /** The backend's highest RSS since startPeak (the kernel's high-water mark, not a sample), in bytes. */
  peakSinceStart(): number;
  readonly rng: () => number;
}

/** A hostile class. */
export interface HostileClass {
  readonly name: string;
  readonly doc: string;
  run(ctx: ClassContext): Promise<void>;
}

/**
 * A frame encoded once, and a copy of it for each id: the envelope is packed
 * with `id` 0xfffffffe (a uint32: `ce ff ff ff fe` after the key `id`), and
 * each copy gets its id written over those four bytes.
 */
function withId(env: Omit<Envelope, 'id'>): (id: number) => Uint8Array {
  const template = Buffer.from(packRaw({ v: env.v, kind: env.kind, type: env.type, id: 0xfffffffe, body: env.body }));
  const at = template.indexOf(Buffer.from([0xa2, 0x69, 0x64, 0xce, 0xff, 0xff, 0xff, 0xfe]));
  if (at < 0) throw new Error('withId: the id of the template was not found');
  return (id) => {
    const frame = Buffer.from(template);
    frame.writeUInt32BE(id, at + 4);
    return frame;
  };
}

interface Vector { name: string; envelope: unknown; hex: string }
/** The golden vectors of a protocol version, each to be sent on a connection of that version. */
function loadVectors(version: number) {
  const vectors = JSON.parse(readFileSync(new URL(`../../protocol/vectors/v${version}.json`, import.meta.url), 'utf8')) as Vector[];
  return {
    bytes: vectors.map((v) => Uint8Array.from(Buffer.from(v.hex, 'hex'))),
    requests: vectors.filter((v) => v.name.endsWith('.req')).map((v) => fromJsonValue(v.envelope) as Envelope),
  };
}
/** Versions the hostile classes speak: every class alternates between them (v2: packed batches, GNTTAB_MAP_DIRECTORY). */
const VERSIONS = [1, 2] as const;
const VECTORS = new Map(VERSIONS.map((v) => [v, loadVectors(v)] as const));

/** A u32 batch as version 2 carries it: a packed array (SPEC 4.1), little-endian bytes. */
function packedU32(values: readonly number[]): Uint8Array {
  const a = Uint32Array.from(values);
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

const int = (rng: () => number, n: number) => Math.floor(rng() * n);

/** Sends one frame on an authenticated hostile connection and checks the answer against the oracle. */
async function oneFrame(ctx: ClassContext, h: { client: RawClient }, bytes: Uint8Array): Promise<void> {
  // Routing to the legitimate domains is the spoofing class's business; a frame that would be routed there is skipped.
  const env = decoded(bytes);
  if (env?.dst !== undefined && ctx.legit.includes(env.dst)) return;
  ctx.input();
  const expected = expectedAnswer(bytes, MAX_FRAME_BYTES, h.client.version);
  const got = await h.client.exchange(bytes);
  // Replies may come in any order (SPEC 6): a handler that yields between slices of a large batch
  // answers after the barrier PING. Wait for the reply itself before judging.
  if (expected.answer === 'one-reply' && !got.stalled && got.closed === undefined
    && !got.frames.some((e) => e.kind !== 'evt' && e.id === expected.id && e.type === expected.type)) {
    const late = await h.client.next((e) => e.kind !== 'evt' && e.id === expected.id && e.type === expected.type, 10_000);
    if (late) got.frames.push(late);
  }
  const bad = disagreement(expected, got);
  if (bad) ctx.find({ what: `v${h.client.version}: ${bad}`, frame: bytes, state: 'authenticated', version: h.client.version, expected });
}

/**
 * Keeps one hostile domain connected per protocol version, replacing it when
 * a frame closed its connection; `body` runs on each in turn (its connection's
 * version in `h.client.version`).
 */
async function withHostile(ctx: ClassContext, body: (h: { domid: number; client: RawClient }) => Promise<void>): Promise<void> {
  const hs = await Promise.all(VERSIONS.map((v) => ctx.hostile(v)));
  for (let turn = 0; ctx.more(); turn++) {
    const k = turn % hs.length;
    if (!hs[k]!.client.isOpen) hs[k] = await ctx.hostile(VERSIONS[k]);
    await body(hs[k]!);
  }
  for (const h of hs) h.client.terminate();
}

function mutate(rng: () => number, src: Uint8Array): Uint8Array {
  let b = Array.from(src);
  const n = 1 + int(rng, 4);
  for (let i = 0; i < n; i++) {
    const at = int(rng, Math.max(1, b.length));
    switch (int(rng, 6)) {
      case 0: b[at] = int(rng, 256); break;
      case 1: b[at] = b[at]! ^ (1 << int(rng, 8)); break;
      case 2: b.splice(at, 0, int(rng, 256)); break;
      case 3: b.splice(at, 1 + int(rng, 4)); break;
      case 4: b = b.slice(0, at); break;
      default: b.splice(at, 0, ...b.slice(at, at + 1 + int(rng, 8))); break;
    }
  }
  return Uint8Array.from(b);
}

/** Values of every MessagePack kind, for putting where they do not belong. */
const CONFUSION: unknown[] = [1.5, 'x', null, true, [], {}, -1, 2n ** 40n, 2n ** 60n, -(2n ** 40n), new Uint8Array(3), [1, 2, 3], { a: 1 }, 0xffffffff, 'A'.repeat(300)];

/** Every class, in the order they run. */
export const CLASSES: HostileClass[] = [
  {
    name: 'random',
    doc: 'random bytes, mostly starting as a map, on an authenticated connection',
    async run(ctx) {
      await withHostile(ctx, async (h) => {
        const len = 1 + int(ctx.rng, 200);
        const b = new Uint8Array(len);
        for (let i = 0; i < len; i++) b[i] = int(ctx.rng, 256);
        if (ctx.rng() < 0.8) b[0] = 0x80 | int(ctx.rng, 16);
        await oneFrame(ctx, h, b);
      });
    },
  },
  {
    name: 'mutated',
    doc: 'golden vectors (protocol/vectors/v1.json and v2.json, each on a connection of its version) with bytes flipped, inserted, deleted, truncated, duplicated',
    async run(ctx) {
      await withHostile(ctx, async (h) => {
        const { bytes } = VECTORS.get(h.client.version as 1 | 2)!;
        await oneFrame(ctx, h, mutate(ctx.rng, bytes[int(ctx.rng, bytes.length)]!));
      });
    },
  },
  {
    name: 'type-confusion',
    doc: 'every request vector of v1 and v2 (packed fields included) with each envelope and body field replaced by a value of every other kind',
    async run(ctx) {
      const casesOf = (version: 1 | 2) => {
        const cases: Uint8Array[] = [];
        for (const env of VECTORS.get(version)!.requests) {
          const head = { v: env.v, kind: env.kind, type: env.type, id: env.id } as Record<string, unknown>;
          for (const key of [...Object.keys(head), ...Object.keys(env.body)]) {
            for (const value of CONFUSION) {
              const body: Record<string, unknown> = { ...env.body };
              const h2 = { ...head };
              if (key in head) h2[key] = value; else body[key] = value;
              cases.push(packRaw({ ...h2, body }));
            }
          }
        }
        return cases;
      };
      const cases = new Map(VERSIONS.map((v) => [v, casesOf(v)] as const));
      let i = 0;
      await withHostile(ctx, async (h) => {
        const mine = cases.get(h.client.version as 1 | 2)!;
        await oneFrame(ctx, h, mine[(i++ >> 1) % mine.length]!);
      });
    },
  },
  {
    name: 'largest-batches',
    doc: 'GNTTAB_MAP_GRANT_REF and GNTTAB_UNMAP_GRANT_REF of 65,536 entries (v2: packed), GNTTAB_COPY of 65,536 ops, GNTTAB_MAP_DIRECTORY of 65,536 pages (v2; all refused per entry)',
    async run(ctx) {
      const refs = Array.from({ length: 65_536 }, (_, i) => 1_000_000 + i);
      const packed = packedU32(refs);
      const ops = Array.from({ length: 65_536 }, (_, i) => ({ source: { ref: i, dom: 0x7fef, offset: 0 }, dest: { ref: i, dom: 0x7fef, offset: 0 }, len: 8, flags: 3 }));
      let n = 0;
      await withHostile(ctx, async (h) => {
        const id = 10 + (n % 1000);
        const v = h.client.version;
        const which = (n++ >> 1) % 4;
        const batch = v === 2 ? packed : refs;
        const env = which === 0
          ? { v, kind: 'req', type: 'GNTTAB_MAP_GRANT_REF', id, body: { dom: h.domid, flags: GNTMAP.host_map, refs: batch } }
          : which === 1
            ? { v, kind: 'req', type: 'GNTTAB_UNMAP_GRANT_REF', id, body: { handles: batch } }
            : which === 2 || v === 1
              ? { v, kind: 'req', type: 'GNTTAB_COPY', id, body: { ops } }
              // A directory its own table does not hold: the first directory page's map fails, nothing is mapped.
              : { v, kind: 'req', type: 'GNTTAB_MAP_DIRECTORY', id, body: { dom: h.domid, flags: GNTMAP.host_map, format: 'linked', dirRef: 1_000_000, nents: 65_536 } };
        await oneFrame(ctx, h, packRaw(env));
      });
    },
  },
  {
    name: 'oversized-nested',
    doc: '17-deep nesting, a body of 1.5 million keys, array headers claiming 16 million elements, frames one byte over 16 MiB',
    async run(ctx) {
      let nest: unknown = 0;
      for (let i = 0; i < 15; i++) nest = [nest];
      const deep = packRaw({ v: 1, kind: 'req', type: 'PING', id: 5, body: { nonce: nest } });
      // A map of 1.5 million keys, built as bytes (0xdf count, then fixstr keys and 0 values).
      const keys = 1_500_000;
      const wide = Buffer.alloc(5 + keys * 8);
      wide[0] = 0xdf; wide.writeUInt32BE(keys, 1);
      for (let i = 0, p = 5; i < keys; i++, p += 8) { wide[p] = 0xa6; wide.write(i.toString(36).padStart(6, '0'), p + 1); wide[p + 7] = 0; }
      const prefix = packRaw({ v: 1, kind: 'req', type: 'PING', id: 6 });
      const wideFrame = Buffer.concat([Buffer.from([0x80 | 6]), Buffer.from(prefix.subarray(1)), Buffer.from([0xa4, ...Buffer.from('body')]), wide]);
      const claim = Buffer.concat([Buffer.from([0x85]), Buffer.from(packRaw({ v: 1, kind: 'req', type: 'PING', id: 7 }).subarray(1)), Buffer.from([0xa4, ...Buffer.from('body'), 0x81, 0xa5, ...Buffer.from('nonce'), 0xdd, 0x01, 0, 0, 0, 1, 2, 3])]);
      const over = new Uint8Array(MAX_FRAME_BYTES + 1).fill(0xc0);
      const frames = [deep, wideFrame, claim, over];
      let i = 0;
      await withHostile(ctx, async (h) => {
        await oneFrame(ctx, h, frames[i++ % frames.length]!);
      });
    },
  },
  {
    name: 'unauth-flood',
    doc: 'connections that never authenticate: requests before HELLO, frames above the HELLO size, HELLOs with bad tokens',
    async run(ctx) {
      const kinds = [
        { bytes: packRaw({ v: 1, kind: 'req', type: 'GNTTAB_QUERY_SIZE', id: 3, body: {} }), expected: { answer: 'err', type: 'GNTTAB_QUERY_SIZE', id: 3, code: 'ERR_NOT_AUTHENTICATED' } as Expected },
        { bytes: packRaw({ v: 1, kind: 'req', type: 'PING', id: 4, body: { nonce: 1, pad: new Uint8Array(MAX_HELLO_FRAME_BYTES) } }), expected: { answer: 'close', code: 1009 } as Expected },
        { bytes: packRaw({ v: 1, kind: 'req', type: 'HELLO', id: 5, body: { minVersion: 1, maxVersion: 1, domid: ctx.legit[0]!, token: 'not-the-token', caps: [] } }), expected: { answer: 'err', type: 'HELLO', id: 5, code: 'ERR_BAD_TOKEN' } as Expected },
      ];
      while (ctx.more()) {
        await Promise.all(Array.from({ length: 8 }, async (_, j) => {
          const k = kinds[j % kinds.length]!;
          ctx.input();
          let c: RawClient;
          try {
            c = await RawClient.open(ctx.url);
          } catch {
            return; // dropped at accept: the unauthenticated cap (SPEC 3.7)
          }
          const got = await c.exchange(k.bytes);
          // ERR_BAD_TOKEN closes the connection (1008) after its err reply: the barrier never comes.
          if (k.expected.answer === 'err' && k.expected.code === 'ERR_BAD_TOKEN') {
            const reply = got.frames.find((e) => e.kind === 'err' && e.id === 5);
            if ((reply?.body as { code?: string } | undefined)?.code !== 'ERR_BAD_TOKEN' || got.closed !== 1008) ctx.find({ what: `bad token: got ${JSON.stringify(reply?.body)} and close ${got.closed}` });
          } else {
            const bad = disagreement(k.expected, got);
            if (bad) ctx.find({ what: bad, frame: k.bytes, state: 'unauthenticated', expected: k.expected });
          }
          c.terminate();
        }));
      }
    },
  },
  {
    name: 'many-connections',
    doc: '200 connections opened at once, none authenticating; at most 64 may be admitted (SPEC 3.7)',
    async run(ctx) {
      while (ctx.more()) {
        const results = await Promise.allSettled(Array.from({ length: 200 }, () => { ctx.input(); return RawClient.open(ctx.url); }));
        const open = results.filter((r): r is PromiseFulfilledResult<RawClient> => r.status === 'fulfilled').map((r) => r.value);
        if (open.length > 64) ctx.find({ what: `${open.length} unauthenticated connections admitted at once (limit 64)` });
        for (const c of open) c.terminate();
        await Promise.all(open.map((c) => c.closed));
      }
    },
  },
  {
    name: 'never-read',
    doc: 'a domain that sends 65,536-ref GNTTAB_MAP_GRANT_REF batches and never reads the replies (about 460 KB each in v1, 655 KB packed in v2; alternately)',
    async run(ctx) {
      const refs = Array.from({ length: 65_536 }, (_, i) => 1_000_000 + i);
      const packed = packedU32(refs);
      for (let round = 0; ctx.more(); round++) {
        const version = VERSIONS[round % VERSIONS.length]!;
        const h = await ctx.hostile(version);
        // Encoded once per round: encoding a 65,536-ref batch per send cost this process (the legitimate domains' neighbour
        // on the same cores) a few milliseconds each, some 70 times a round, which the latency of the legitimate domains paid for.
        const batch = withId({ v: version, kind: 'req', type: 'GNTTAB_MAP_GRANT_REF', body: { dom: h.domid, flags: GNTMAP.host_map, refs: version === 2 ? packed : refs } });
        const before = ctx.rssNow();
        ctx.startPeak();
        h.client.ws.pause();
        // Send until the backend has stopped reading us: our own unsent bytes pile up.
        for (let i = 0; i < 400 && ctx.more() && h.client.ws.bufferedAmount < 32 * 1024 * 1024; i++) {
          ctx.input();
          h.client.sendBytes(batch(100 + i));
          await new Promise((r) => setTimeout(r, 5));
        }
        // What was read is handled meanwhile; the peak is the high-water mark over all of it.
        await new Promise((r) => setTimeout(r, 1000));
        const grew = ctx.peakSinceStart() - before;
        const allowed = ctx.sendBudget + 48 * 1024 * 1024;
        if (grew > allowed) ctx.find({ what: `backend RSS grew ${(grew / 2 ** 20).toFixed(0)} MiB for a domain that never reads (budget ${(ctx.sendBudget / 2 ** 20).toFixed(0)} MiB + 48 MiB allowed, SPEC 3.7)` });
        h.client.terminate();
        await h.client.closed;
      }
    },
  },
  {
    name: 'slow-partial',
    doc: 'a WebSocket handshake sent a byte at a time, and upgraded connections that never say HELLO: all cut off at the deadline that began at the TCP accept',
    async run(ctx) {
      const url = new URL(ctx.url);
      const deadline = ctx.helloTimeoutMs + 3000;
      while (ctx.more()) {
        await Promise.all(Array.from({ length: 6 }, async (_, j) => {
          ctx.input();
          const started = Date.now();
          if (j % 2 === 0) {
            const sock = createConnection({ host: url.hostname, port: Number(url.port) });
            sock.on('error', () => undefined);
            const request = `GET / HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;
            let i = 0;
            const drip = setInterval(() => { if (i < request.length) sock.write(request[i++]!); }, 200);
            const closed = await new Promise<boolean>((resolve) => {
              const t = setTimeout(() => resolve(false), deadline);
              sock.once('close', () => { clearTimeout(t); resolve(true); });
            });
            clearInterval(drip);
            sock.destroy();
            if (!closed) ctx.find({ what: `a handshake dripping a byte per 200 ms was not cut off within ${deadline} ms of the accept` });
          } else {
            let c: RawClient;
            try { c = await RawClient.open(ctx.url); } catch { return; }
            // Upgraded, then silent: no HELLO ever comes.
            const code = await Promise.race([c.closed, new Promise<number>((r) => setTimeout(() => r(-1), deadline))]);
            c.terminate();
            if (code === -1) ctx.find({ what: `an upgraded connection without HELLO was not closed within ${deadline} ms (started ${Date.now() - started} ms ago)` });
          }
        }));
      }
    },
  },
  {
    name: 'churn',
    doc: 'domains created, connected, given a table and a port, and disconnected in a loop; every death cascade must leave nothing behind',
    async run(ctx) {
      while (ctx.more()) {
        ctx.input();
        const h = await ctx.hostile();
        h.client.send({ v: 1, kind: 'req', type: 'GNTTAB_SETUP_TABLE', id: 2, body: { nrFrames: 2 } });
        h.client.send({ v: 1, kind: 'req', type: 'EVTCHN_ALLOC_UNBOUND', id: 3, body: { remoteDom: ctx.legit[0]! } });
        const got = await h.client.exchange(packRaw({ v: 1, kind: 'req', type: 'PING', id: 4, body: { nonce: 4 } }));
        const replies = got.frames.filter((e) => e.kind === 'res' || e.kind === 'err');
        if (got.stalled || got.bad.length || replies.length !== 3) ctx.find({ what: `churn: expected 3 replies, got ${replies.length} ${got.bad[0] ?? ''}` });
        if (ctx.rng() < 0.5) h.client.terminate(); else h.client.ws.close();
        await h.client.closed;
      }
    },
  },
  {
    name: 'spoof-foreign',
    doc: 'src naming the legitimate domains, their grants and handles and ports used by a stranger, replies to requests it never got (v1 and v2)',
    async run(ctx) {
      const [a, b] = ctx.legit as [number, number];
      let n = 0;
      await withHostile(ctx, async (h) => {
        const id = 50 + (n % 1000);
        const which = n++ % 5;
        const v = h.client.version;
        const batch = (values: number[]) => (v === 2 ? packedU32(values) : values);
        ctx.input();
        let env: Record<string, unknown>;
        let check: (frames: Envelope[]) => string | undefined;
        const reply = (frames: Envelope[]) => frames.filter((e) => (e.kind === 'res' || e.kind === 'err') && e.id === id);
        if (which === 0) {
          env = { v, kind: 'req', type: 'PING', id, src: a, body: { nonce: 1 } };
          check = (f) => ((reply(f)[0]?.body as { code?: string })?.code === 'ERR_SPOOFED_SOURCE' ? undefined : `src d${a}: ${JSON.stringify(reply(f)[0]?.body)}`);
        } else if (which === 1) {
          env = { v, kind: 'req', type: 'GNTTAB_MAP_GRANT_REF', id, body: { dom: a, flags: GNTMAP.host_map | GNTMAP.readonly, refs: batch(Array.from({ length: 16 }, (_, i) => i)) } };
          check = (f) => {
            const r = reply(f)[0];
            const status = (r?.body as { status?: ArrayLike<number> & { every(p: (s: number) => boolean): boolean } })?.status;
            return r?.kind === 'res' && status?.every((s) => s < 0) ? undefined : `mapping d${a}'s grants as a stranger: ${JSON.stringify(r?.body).slice(0, 120)}`;
          };
        } else if (which === 2) {
          env = { v, kind: 'req', type: 'GNTTAB_UNMAP_GRANT_REF', id, body: { handles: batch(Array.from({ length: 16 }, () => int(ctx.rng, 0x100000))) } };
          check = (f) => {
            const r = reply(f)[0];
            const status = (r?.body as { status?: ArrayLike<number> & { every(p: (s: number) => boolean): boolean } })?.status;
            return r?.kind === 'res' && status?.every((s) => s < 0) ? undefined : `unmapping handles it never had: ${JSON.stringify(r?.body).slice(0, 120)}`;
          };
        } else if (which === 3) {
          env = { v, kind: 'req', type: 'EVTCHN_SEND', id, body: { port: 1 + int(ctx.rng, 4095) } };
          check = (f) => (reply(f)[0]?.kind === 'err' ? undefined : `EVTCHN_SEND on a port it does not own: ${JSON.stringify(reply(f)[0]?.body)}`);
        } else {
          env = { v, kind: 'res', type: 'ECHO', id: 1 + int(ctx.rng, 1000), dst: b, body: { payload: new Uint8Array(4) } };
          check = (f) => (f.some((e) => e.kind === 'res' || e.kind === 'err' || e.type === 'PROTOCOL_ERROR') ? `a stray reply was answered: ${JSON.stringify(f.map((e) => e.body)).slice(0, 120)}` : undefined);
        }
        const bytes = packRaw(env);
        const got = await h.client.exchange(bytes);
        const bad = got.bad[0] ?? (got.stalled ? 'stalled' : got.closed !== undefined ? `closed ${got.closed}` : check(got.frames));
        if (bad) ctx.find({ what: `v${v}: ${bad}` });
      });
    },
  },
];
