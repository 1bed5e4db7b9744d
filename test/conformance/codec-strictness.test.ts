/**
 * Conformance, SPEC.md sections 2-4 and 3.7: the codec is as strict as the
 * text. Integers must be MessagePack integers (the type byte decides, not the
 * value: float64 7.0 and float32 2.0 are floats), in the body and in the
 * envelope; integers beyond 32 bits travel through the router as integers,
 * unchanged; an `err` body is held to its fields and patterns (SPEC 4);
 * field paths name every key exactly (`__proto__` included); the structure
 * limits refuse a frame before it is built; before HELLO only a HELLO-sized
 * frame is read. Every check on a session runs over protocol v1 and v2 (the
 * backend speaks both, SPEC 15), in frames of the negotiated version.
 *
 * Frames are written byte by byte here where a general encoder would choose
 * another form (msgpackr writes 7.0 as the integer 7).
 */
import { describe, expect, it } from 'vitest';
import { MAX_HELLO_FRAME_BYTES, type Envelope } from '../../protocol/index.ts';
import { useBackend, type Guest, type GuestOptions } from './support/harness.ts';
import { packRaw, type ErrBody, type WireClient } from './support/wire.ts';

const hv = useBackend();

/** The protocol versions every check on a session runs over. */
const VERSIONS = [1, 2];

/** A domain connected over `version` (HELLO offering 1..version; the backend must choose it). */
async function guestAt(version: number, o: GuestOptions = {}): Promise<Guest> {
  const g = await hv.guest({ ...o, maxVersion: version });
  if (o.connect !== false) expect(g.client.version, 'the version HELLO chose').toBe(version);
  return g;
}

type Answer = Envelope & { body: ErrBody };

/** MessagePack fixstr. */
function str(s: string): number[] {
  const b = [...Buffer.from(s)];
  expect(b.length).toBeLessThan(32);
  return [0xa0 | b.length, ...b];
}

const f64 = (x: number): number[] => { const b = Buffer.alloc(9); b[0] = 0xcb; b.writeDoubleBE(x, 1); return [...b]; };
const f32 = (x: number): number[] => { const b = Buffer.alloc(5); b[0] = 0xca; b.writeFloatBE(x, 1); return [...b]; };
const u32 = (x: number): number[] => { const b = Buffer.alloc(5); b[0] = 0xce; b.writeUInt32BE(x, 1); return [...b]; };

/**
 * A map frame from (key, encoded value) pairs; `body` pairs are nested as the body map.
 * Values are given as their exact bytes.
 */
function frame(envelope: [string, number[]][], body: [string, number[]][]): Uint8Array {
  const bodyBytes = [0x80 | body.length, ...body.flatMap(([k, v]) => [...str(k), ...v])];
  const all: [string, number[]][] = [...envelope, ['body', bodyBytes]];
  return Uint8Array.from([0x80 | all.length, ...all.flatMap(([k, v]) => [...str(k), ...v])]);
}

function ping(id: number[], nonce: number[], v: number[]): Uint8Array {
  return frame([['v', v], ['kind', str('req')], ['type', str('PING')], ['id', id]], [['nonce', nonce]]);
}

/** Sends one frame and returns the one answer about it (an err reply to `id`, or a PROTOCOL_ERROR); then checks the connection still serves. */
async function answerTo(c: WireClient, bytes: Uint8Array, id?: number): Promise<Answer> {
  const answer = c.next((e) => (e.kind === 'evt' && e.type === 'PROTOCOL_ERROR') || ((e.kind === 'err' || e.kind === 'res') && id !== undefined && e.id === id), 'an answer');
  c.sendBytes(bytes);
  const got = (await answer) as Answer;
  const barrier = await c.request('PING', { nonce: 77 });
  if (c.domid !== undefined) expect(barrier.body, 'the connection still serves').toEqual({ nonce: 77 });
  else expect(barrier.body, 'the connection is still open').toMatchObject({ code: 'ERR_NOT_AUTHENTICATED' });
  return got;
}

describe('SPEC 2: integers are MessagePack integers', () => describe.each(VERSIONS)('over protocol v%i', (version) => {
    it('a float with an integral value (float64 7.0, float32 7.0) in a body field gets ERR_FIELD_TYPE with the field', async () => {
      const g = await guestAt(version);
      for (const [name, nonce] of [['float64 7.0', f64(7)], ['float32 7.0', f32(7)], ['float64 0.0', f64(0)]] as const) {
        const a = await answerTo(g.client, ping(u32(9001), [...nonce], [version]), 9001);
        expect(a, name).toMatchObject({ kind: 'err', type: 'PING', id: 9001, body: { code: 'ERR_FIELD_TYPE', field: 'body.nonce' } });
      }
      // The same value as an integer, in any integer width, is fine.
      for (const nonce of [[7], [0xcc, 7], [0xcd, 0, 7], u32(7), [0xcf, 0, 0, 0, 0, 0, 0, 0, 7], [0xd3, 0, 0, 0, 0, 0, 0, 0, 7]]) {
        const a = await answerTo(g.client, ping(u32(9002), nonce, [version]), 9002);
        expect(a, `nonce bytes ${Buffer.from(nonce).toString('hex')}`).toMatchObject({ kind: 'res', id: 9002, body: { nonce: 7 } });
      }
    });

    it('an array element that is an integral float gets ERR_FIELD_TYPE at its index', async () => {
      const g = await guestAt(version);
      const peer = await guestAt(version);
      if (version === 1) {
        // refs is an array of integers in v1 (a packed u32 bin in v2, SPEC 4.1).
        const body: [string, number[]][] = [['dom', [g.domid]], ['flags', [0]], ['refs', [0x92, 1, ...f64(2)]]];
        const a = await answerTo(g.client, frame([['v', [1]], ['kind', str('req')], ['type', str('GNTTAB_MAP_GRANT_REF')], ['id', u32(9003)]], body), 9003);
        expect(a).toMatchObject({ kind: 'err', id: 9003, body: { code: 'ERR_FIELD_TYPE', field: 'body.refs[1]' } });
      }
      // A routed event's array of integers (FENCE_SLOTS_RELEASE slots): PROTOCOL_ERROR at the index, nothing routed.
      const event = frame([['v', [version]], ['kind', str('evt')], ['type', str('FENCE_SLOTS_RELEASE')], ['id', [0]], ['dst', [0xcd, peer.domid >> 8, peer.domid & 0xff]]],
        [['tl', [1]], ['slots', [0x92, 1, ...f64(2)]]]);
      const e = await answerTo(g.client, event);
      expect(e).toMatchObject({ kind: 'evt', type: 'PROTOCOL_ERROR', body: { code: 'ERR_FIELD_TYPE', field: 'body.slots[1]' } });
      expect(await peer.client.call('PING', { nonce: 3 })).toEqual({ nonce: 3 });
      expect(peer.client.unclaimed().filter((x) => x.type === 'FENCE_SLOTS_RELEASE')).toEqual([]);
    });

    it('envelope: v as float64 1.0 gets ERR_BAD_ENVELOPE (err reply: id readable); id as float64 5.0 gets PROTOCOL_ERROR ERR_BAD_ENVELOPE', async () => {
      const g = await guestAt(version);
      const a = await answerTo(g.client, ping(u32(9004), [1], f64(1)), 9004);
      expect(a).toMatchObject({ kind: 'err', type: 'PING', id: 9004, body: { code: 'ERR_BAD_ENVELOPE', field: 'envelope.v' } });
      const b = await answerTo(g.client, ping(f64(5), [1], [version]));
      expect(b).toMatchObject({ kind: 'evt', type: 'PROTOCOL_ERROR', body: { code: 'ERR_BAD_ENVELOPE', field: 'envelope.id', type: 'PING' } });
      expect(b.body.id, 'a float id is not readable').toBeUndefined();
    });

    it('a HELLO whose id is float32 2.0 gets PROTOCOL_ERROR ERR_BAD_ENVELOPE, is not processed, and the connection stays open for a real HELLO', async () => {
      const d = await guestAt(version, { connect: false });
      const c = await hv.open('float-id-hello');
      const hello = (id: number[]) => frame([['v', [1]], ['kind', str('req')], ['type', str('HELLO')], ['id', id]], [
        ['minVersion', [1]], ['maxVersion', [version]], ['domid', [0xcd, d.domid >> 8, d.domid & 0xff]],
        ['token', [0xd9, Buffer.byteLength(d.token), ...Buffer.from(d.token)]], ['caps', [0x91, ...str('gnttab.v1')]],
      ]);
      const a = await answerTo(c, hello(f32(2)));
      expect(a).toMatchObject({ kind: 'evt', type: 'PROTOCOL_ERROR', body: { code: 'ERR_BAD_ENVELOPE', field: 'envelope.id', type: 'HELLO' } });
      expect((await hv.statsOf(d.domid))?.connected, 'the float-id HELLO was not processed').toBe(false);
      const reply = c.next((e) => e.kind === 'res' && e.id === 2, 'the HELLO reply');
      c.sendBytes(hello([2]));
      expect(await reply).toMatchObject({ kind: 'res', type: 'HELLO', body: { domid: d.domid } });
      expect(c.isClosed).toBe(false);
    });

    it('an integer beyond 2^53 (uint64) is out of every declared range: ERR_FIELD_RANGE', async () => {
      const g = await guestAt(version);
      const a = await answerTo(g.client, ping(u32(9005), [0xcf, 0x00, 0x20, 0, 0, 0, 0, 0, 1], [version]), 9005);
      expect(a).toMatchObject({ kind: 'err', id: 9005, body: { code: 'ERR_FIELD_RANGE', field: 'body.nonce' } });
    });
}));

describe('SPEC 2, 6: integers beyond 32 bits travel through the router unchanged', () => describe.each(VERSIONS)('over protocol v%i', (version) => {
    it('a routed FENCE_EXPORT carrying seqno 2^40+1 and 2^53-1 reaches dst as MessagePack integers with the same values', async () => {
      const a = await guestAt(version);
      const b = await guestAt(version);
      const raw: Buffer[] = [];
      b.client.ws.on('message', (data: Buffer) => raw.push(data));
      const seqnos = [2 ** 40 + 1, Number.MAX_SAFE_INTEGER];
      const fences = seqnos.map((seqno, i) => ({ tl: 1, seqno: BigInt(seqno), slot: i }));
      const id = a.client.allocId();
      const reply = a.client.awaitReply(id, 'FENCE_EXPORT reply');
      // Sent as uint64/int64 integers (packRaw writes a bigint as an integer).
      a.client.sendRaw({ v: version, kind: 'req', type: 'FENCE_EXPORT', id, dst: b.domid, body: { cookie: 1, fences } });
      const got = await b.client.nextRequest('FENCE_EXPORT');
      expect((got.body as { fences: { seqno: number }[] }).fences.map((f) => f.seqno)).toEqual(seqnos);
      // The bytes: every seqno is an 8-byte integer (0xcf or 0xd3) holding the value, never a float (0xcb).
      const bytes = raw.find((r) => r.includes(Buffer.from('FENCE_EXPORT')))!;
      for (const seqno of seqnos) {
        const be = Buffer.alloc(8);
        be.writeBigUInt64BE(BigInt(seqno));
        const at = bytes.indexOf(be);
        expect(at, `seqno ${seqno} as an 8-byte integer`).toBeGreaterThan(0);
        expect([0xcf, 0xd3], `type byte before seqno ${seqno}`).toContain(bytes[at - 1]);
      }
      b.client.send({ v: version, kind: 'res', type: 'FENCE_EXPORT', id: got.id, dst: a.domid, body: {} });
      expect(await reply).toMatchObject({ kind: 'res', src: b.domid });
    });
}));

describe('SPEC 4: the err body', () => describe.each(VERSIONS)('over protocol v%i', (version) => {
    it('a routed err whose code breaks the pattern, or with an undeclared field, is refused (PROTOCOL_ERROR with the field) and not forwarded; a well-formed unknown code is forwarded intact', async () => {
      const a = await guestAt(version);
      const b = await guestAt(version);
      const cases: [string, Record<string, unknown>, string, string][] = [
        ['a lower-case code', { code: 'err_bad', message: 'x' }, 'ERR_FIELD_RANGE', 'body.code'],
        ['a code of 65 characters', { code: 'E'.repeat(65), message: 'x' }, 'ERR_FIELD_RANGE', 'body.code'],
        ['a code that is an integer', { code: 7, message: 'x' }, 'ERR_FIELD_TYPE', 'body.code'],
        ['no message', { code: 'ERR_BUSY' }, 'ERR_FIELD_MISSING', 'body.message'],
        ['a message of 1025 characters', { code: 'ERR_BUSY', message: 'm'.repeat(1025) }, 'ERR_FIELD_RANGE', 'body.message'],
        ['a field path of 257 characters', { code: 'ERR_BUSY', message: 'x', field: 'f'.repeat(257) }, 'ERR_FIELD_RANGE', 'body.field'],
        ['min above 65535', { code: 'ERR_UNSUPPORTED_VERSION', message: 'x', min: 65536 }, 'ERR_FIELD_RANGE', 'body.min'],
        ['an undeclared field', { code: 'ERR_BUSY', message: 'x', detail: 1 }, 'ERR_UNKNOWN_FIELD', 'body.detail'],
      ];
      for (const [name, body, code, field] of cases) {
        const id = a.client.allocId();
        const reply = a.client.awaitReply(id, 'ECHO reply');
        a.client.send({ v: version, kind: 'req', type: 'ECHO', id, dst: b.domid, body: { payload: new Uint8Array(1) } });
        const req = await b.client.nextRequest('ECHO');
        const refusal = b.client.nextProtocolError();
        b.client.sendRaw({ v: version, kind: 'err', type: 'ECHO', id: req.id, dst: a.domid, body });
        expect(await refusal, name).toMatchObject({ body: { code, field } });
        // The requester still waits for its one reply: answer properly now.
        b.client.sendRaw({ v: version, kind: 'err', type: 'ECHO', id: req.id, dst: a.domid, body: { code: 'ERR_SOMETHING_NEWER', message: 'from a newer peer' } });
        expect(await reply, name).toMatchObject({ kind: 'err', src: b.domid, body: { code: 'ERR_SOMETHING_NEWER', message: 'from a newer peer' } });
      }
    });
}));

describe('SPEC 4: field paths', () => describe.each(VERSIONS)('over protocol v%i', (version) => {
    it('every key is named exactly: __proto__, constructor, keys with dots', async () => {
      const g = await guestAt(version);
      for (const key of ['__proto__', 'constructor', 'a.b', 'x'.repeat(20)]) {
        const a = await answerTo(g.client, frame([['v', [version]], ['kind', str('req')], ['type', str('PING')], ['id', u32(9100)]], [['nonce', [1]], [key, [1]]]), 9100);
        expect(a, key).toMatchObject({ kind: 'err', body: { code: 'ERR_UNKNOWN_FIELD', field: `body.${key}` } });
      }
      const env = await answerTo(g.client, frame([['v', [version]], ['kind', str('req')], ['type', str('PING')], ['id', u32(9101)], ['__proto__', [1]]], [['nonce', [1]]]), 9101);
      expect(env).toMatchObject({ kind: 'err', body: { code: 'ERR_BAD_ENVELOPE', field: 'envelope.__proto__' } });
    });
}));

describe('SPEC 3.3: structure limits, before anything is built', () => describe.each(VERSIONS)('over protocol v%i', (version) => {
    it('an array longer than any declaration allows, a map larger than any declared one, and more values than any declared frame are ERR_MALFORMED', async () => {
      const g = await guestAt(version);
      // The id comes before the body, so it is readable (SPEC 4) and the refusal is an err reply.
      const a = await answerTo(g.client, packRaw({ v: version, kind: 'req', type: 'GNTTAB_UNMAP_GRANT_REF', id: 9200, body: { handles: new Array<number>(65_537).fill(1) } }), 9200);
      expect(a).toMatchObject({ kind: 'err', id: 9200, body: { code: 'ERR_MALFORMED' } });
      const wide = Object.fromEntries(Array.from({ length: 1_500_000 >> 8 }, (_, i) => [`k${i}`, 0]));
      const b = await answerTo(g.client, packRaw({ v: version, kind: 'req', type: 'PING', id: 9201, body: { nonce: 1, ...wide } }), 9201);
      expect(b).toMatchObject({ kind: 'err', id: 9201, body: { code: 'ERR_MALFORMED' } });
      // 22 arrays of 65,536 zeros: each within the array limit, together beyond the values of any declared frame.
      const many = Array.from({ length: 22 }, () => new Array<number>(65_536).fill(0));
      const c = await answerTo(g.client, packRaw({ v: version, kind: 'req', type: 'PING', id: 9202, body: { nonce: many } }), 9202);
      expect(c).toMatchObject({ kind: 'err', id: 9202, body: { code: 'ERR_MALFORMED' } });
    });
}));

describe('SPEC 3.4: before HELLO only a HELLO-sized frame is read', () => {
  it(`a frame of ${MAX_HELLO_FRAME_BYTES} bytes is read before HELLO; one byte more closes the connection with 1009`, async () => {
    const ok = await hv.open('hello-sized');
    const frameOf = (pad: number) => packRaw({ v: 1, kind: 'req', type: 'PING', id: 9300, body: { nonce: 1, pad: new Uint8Array(pad) } });
    const overhead = frameOf(1000).length - 1000;
    const atLimit = frameOf(MAX_HELLO_FRAME_BYTES - overhead);
    expect(atLimit.length).toBe(MAX_HELLO_FRAME_BYTES);
    const a = await answerTo(ok, atLimit, 9300);
    expect(a).toMatchObject({ kind: 'err', id: 9300 });
    const big = await hv.open('over-hello-sized');
    big.sendBytes(frameOf(MAX_HELLO_FRAME_BYTES - overhead + 1));
    expect(await big.closeCode()).toBe(1009);
  });
});
