/**
 * Conformance, SPEC.md sections 2-4: the transport (binary WebSocket frames,
 * plain MessagePack, nesting, trailing bytes, the frame size limit) and the
 * envelope (every field check, in the documented order, with its code, and
 * how a bad frame is answered).
 *
 * Every hostile frame must get exactly one answer: an `err` reply when it
 * was a request of a declared request type with a readable id, otherwise a
 * PROTOCOL_ERROR event (SPEC 4, "Answering a bad frame"); and the
 * connection must stay open and usable. "Exactly one" is checked with a
 * PING sent after the frame: the backend answers in order, so anything more
 * it said about the bad frame has arrived before the PING's reply.
 */
import { describe, expect, it } from 'vitest';
import { encodeFrame, MAX_FRAME_BYTES, type Envelope } from '../../protocol/index.ts';
import { domainDied, useBackend } from './support/harness.ts';
import { packRaw, type ErrBody, type WireClient } from './support/wire.ts';

const hv = useBackend();

type Answer = Envelope & { body: ErrBody };

/**
 * Sends one bad frame and returns the backend's one answer about it: an err
 * reply with `id` (when given) or a PROTOCOL_ERROR. Then checks that nothing
 * else about it came and that the connection still serves.
 */
async function answerTo(c: WireClient, frame: Uint8Array | string | Record<string, unknown>, id?: number): Promise<Answer> {
  const answer = c.next((e) => (e.kind === 'evt' && e.type === 'PROTOCOL_ERROR') || ((e.kind === 'err' || e.kind === 'res') && id !== undefined && e.id === id), 'an answer to the bad frame');
  if (typeof frame === 'string' || frame instanceof Uint8Array) c.sendBytes(frame);
  else c.sendRaw(frame);
  const got = (await answer) as Answer;
  // The barrier: on an authenticated connection PING is answered; before HELLO it gets ERR_NOT_AUTHENTICATED.
  const nonce = Math.floor(Math.random() * 0xffffffff);
  const barrier = await c.request('PING', { nonce });
  if (c.domid !== undefined) expect(barrier.body, 'the connection still serves').toEqual({ nonce });
  else expect(barrier.body, 'the connection is still open').toMatchObject({ code: 'ERR_NOT_AUTHENTICATED' });
  const extra = c.unclaimed().filter((e) => e.type === 'PROTOCOL_ERROR' || e.kind === 'err' || e.kind === 'res');
  expect(extra, 'a second answer to one bad frame').toEqual([]);
  return got;
}

function expectErrReply(a: Answer, type: string, id: number, code: string, field?: string): void {
  expect(a, `err reply ${code}`).toMatchObject({ kind: 'err', type, id, body: { code, ...(field !== undefined ? { field } : {}) } });
  expect(a.src, 'the backend\'s own reply carries no src').toBeUndefined();
}

function expectProtocolError(a: Answer, code: string, about: { id?: number; type?: string } = {}): void {
  expect(a, `PROTOCOL_ERROR ${code}`).toMatchObject({ kind: 'evt', type: 'PROTOCOL_ERROR', id: 0, body: { code, ...about } });
  expect(a.src).toBeUndefined();
}

/** A valid PING frame whose nonce is encoded as uint32 0xdeadbeef (ce de ad be ef), for splicing in other bytes. */
function pingWithNonceBytes(id: number, nonce: number[]): Uint8Array {
  const base = encodeFrame({ v: 1, kind: 'req', type: 'PING', id, body: { nonce: 0xdeadbeef } });
  const hex = Buffer.from(base).toString('hex');
  const at = hex.indexOf('cedeadbeef');
  expect(at).toBeGreaterThan(0);
  return Buffer.from(hex.slice(0, at) + Buffer.from(nonce).toString('hex') + hex.slice(at + 10), 'hex');
}

/** `depth` nested arrays around 0: [[[0]]] is depth 3. */
function nested(depth: number): unknown {
  let v: unknown = 0;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

describe('SPEC 3 transport', () => {
  it('3.1: the backend does not negotiate per-message compression', async () => {
    const c = await hv.open('deflate', { perMessageDeflate: true });
    expect(c.ws.extensions).toBe('');
  });

  it('3.2: a text frame gets PROTOCOL_ERROR ERR_MALFORMED, before and after HELLO, and the connection stays open', async () => {
    const g = await hv.guest();
    expectProtocolError(await answerTo(g.client, '{"v":1,"kind":"req","type":"PING","id":1,"body":{"nonce":1}}'), 'ERR_MALFORMED');
    const early = await hv.open('text-before-hello');
    const answer = early.nextProtocolError();
    early.sendBytes('hello');
    expectProtocolError(await answer, 'ERR_MALFORMED');
    const h = await hv.guest({ connect: false });
    expect((await early.hello(h.domid, h.token)).kind).toBe('res');
  });

  it('3.2: the value must be a map (an array, an integer, a string, nil: ERR_MALFORMED); an empty or truncated frame is malformed', async () => {
    const g = await hv.guest();
    for (const value of [[1, 2, 3], 7, 'PING', null]) expectProtocolError(await answerTo(g.client, packRaw(value)), 'ERR_MALFORMED');
    expectProtocolError(await answerTo(g.client, new Uint8Array(0)), 'ERR_MALFORMED');
    const good = encodeFrame({ v: 1, kind: 'req', type: 'PING', id: 3, body: { nonce: 1 } });
    // Truncated in body, after a readable id: an err reply to it.
    expectErrReply(await answerTo(g.client, good.subarray(0, good.length - 1), 3), 'PING', 3, 'ERR_MALFORMED');
  });

  it('3.3, 4 rule 1 of "Readable id": extension types (0xc7-0xc9, 0xd4-0xd8) and the reserved byte 0xc1 are refused (ERR_MALFORMED) before decoding, answered with an err reply because the id before them is readable', async () => {
    const g = await hv.guest();
    const cases: Record<string, number[]> = {
      'fixext 1 (0xd4)': [0xd4, 0x01, 0x00],
      'fixext 2 (0xd5)': [0xd5, 0x01, 0x00, 0x00],
      'fixext 4 (0xd6)': [0xd6, 0x01, 0, 0, 0, 0],
      'fixext 8 (0xd7)': [0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 0], // type -1: the MessagePack timestamp
      'fixext 16 (0xd8)': [0xd8, 0x01, ...new Array<number>(16).fill(0)],
      'ext 8 (0xc7)': [0xc7, 0x01, 0x01, 0x00],
      'ext 16 (0xc8)': [0xc8, 0x00, 0x01, 0x01, 0x00],
      'ext 32 (0xc9)': [0xc9, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00],
      'msgpackr record (0xd4 0x72)': [0xd4, 0x72, 0x40],
      'reserved 0xc1': [0xc1],
    };
    let id = 10;
    for (const [name, bytes] of Object.entries(cases)) {
      const a = await answerTo(g.client, pingWithNonceBytes(++id, bytes), id);
      expect(a.body.field, `${name}: refused as a whole frame, not as a field`).toBeUndefined();
      expectErrReply(a, 'PING', id, 'ERR_MALFORMED');
    }
  });

  it('4, "Readable id": an id after the first unwalkable byte is not readable: PROTOCOL_ERROR without it', async () => {
    const g = await hv.guest();
    // { v, kind, type, body: { nonce: <0xc1> }, id }: the walk stops inside body, before id.
    const frame = Buffer.from(packRaw({ v: 1, kind: 'req', type: 'PING', body: { nonce: 0xdeadbeef }, id: 31 }));
    const bad = Buffer.from(frame.toString('hex').replace('cedeadbeef', 'c1'), 'hex');
    const a = await answerTo(g.client, bad);
    expectProtocolError(a, 'ERR_MALFORMED', { type: 'PING' });
    expect(a.body.id, 'id was not readable').toBeUndefined();
    // An extension value is walked over by its length: an id after it is readable.
    const ext = Buffer.from(frame.toString('hex').replace('cedeadbeef', 'd40100'), 'hex');
    expectErrReply(await answerTo(g.client, ext, 31), 'PING', 31, 'ERR_MALFORMED');
  });

  it('3.3: map keys must be strings (ERR_MALFORMED; the id before the bad key is readable: an err reply)', async () => {
    const g = await hv.guest();
    // { v: 1, kind: 'req', type: 'PING', id: 5, body: { 1: 2 } } with an integer key in body.
    const frame = Buffer.concat([Buffer.from(packRaw({ v: 1, kind: 'req', type: 'PING', id: 5 })).subarray(1), Buffer.from([0xa4, ...Buffer.from('body'), 0x81, 0x01, 0x02])]);
    const head = Buffer.from([0x85]);
    expectErrReply(await answerTo(g.client, Buffer.concat([head, frame]), 5), 'PING', 5, 'ERR_MALFORMED');
  });

  it('3.3: bytes after the first value are refused (ERR_MALFORMED, an err reply to the readable id), and the leading value is not acted on', async () => {
    const g = await hv.guest();
    const good = encodeFrame({ v: 1, kind: 'req', type: 'PING', id: 21, body: { nonce: 21 } });
    for (const tail of [[0xc0], [0x00], Array.from(good)]) {
      const a = await answerTo(g.client, Buffer.concat([good, Buffer.from(tail)]), 21);
      expectErrReply(a, 'PING', 21, 'ERR_MALFORMED');
    }
  });

  it('3.3: nesting of 16 arrays/maps is read, 17 is refused (ERR_MALFORMED)', async () => {
    const g = await hv.guest();
    // Top-level map (1) + body map (2) + 14 arrays = 16 levels: well-formed, so the body check answers.
    expectErrReply(await answerTo(g.client, { v: 1, kind: 'req', type: 'PING', id: 31, body: { nonce: nested(14) } }, 31), 'PING', 31, 'ERR_FIELD_TYPE', 'body.nonce');
    // 17 levels: refused as a whole; the id, read before body, gets the err reply.
    expectErrReply(await answerTo(g.client, { v: 1, kind: 'req', type: 'PING', id: 32, body: { nonce: nested(15) } }, 32), 'PING', 32, 'ERR_MALFORMED');
    // With body before id the walk stops at the 17th level, before the id: PROTOCOL_ERROR.
    const a = await answerTo(g.client, { v: 1, kind: 'req', type: 'PING', body: { nonce: nested(15) }, id: 33 });
    expectProtocolError(a, 'ERR_MALFORMED', { type: 'PING' });
    expect(a.body.id, 'id was not readable').toBeUndefined();
  });

  it('3.4: a frame of exactly 16 MiB is read; one byte more closes the connection with 1009 (before anything else is checked), and the domain dies', async () => {
    const g = await hv.guest();
    const frameOf = (pad: number) => packRaw({ v: 1, kind: 'req', type: 'PING', id: 41, body: { nonce: 1, pad: new Uint8Array(pad) } });
    const overhead = frameOf(70_000).length - 70_000;
    const atLimit = frameOf(MAX_FRAME_BYTES - overhead);
    expect(atLimit.length).toBe(MAX_FRAME_BYTES);
    expectErrReply(await answerTo(g.client, atLimit, 41), 'PING', 41, 'ERR_UNKNOWN_FIELD', 'body.pad');
    const died = domainDied(hv.control, g.domid);
    // One byte over the limit, and not even MessagePack: the size is checked first.
    g.client.sendBytes(new Uint8Array(MAX_FRAME_BYTES + 1).fill(0xc1));
    expect(await g.client.closeCode()).toBe(1009);
    expect(await died).toMatchObject({ domid: g.domid, reason: 'disconnected', mappingsReleased: 0 });
  });
});

describe('SPEC 4 envelope', () => {
  it('4: each envelope field missing, of the wrong type or out of range gets ERR_BAD_ENVELOPE; a request of a declared type with a readable id gets it as an err reply', async () => {
    const g = await hv.guest();
    const base = { v: 1, kind: 'req', type: 'PING', id: 0, body: { nonce: 1 } };
    const without = (k: string) => Object.fromEntries(Object.entries(base).filter(([key]) => key !== k));
    // Faults that leave kind, type and id readable: answered with an err reply.
    const replyable: [string, Record<string, unknown>][] = [
      ['v missing', without('v')],
      ['v 0', { ...base, v: 0 }],
      ['v 65536', { ...base, v: 65536 }],
      ['v a string', { ...base, v: '1' }],
      ['v a float', { ...base, v: 1.5 }],
      ['src out of range', { ...base, src: 0x7ff0 }],
      ['src negative', { ...base, src: -1 }],
      ['dst out of range', { ...base, dst: 0x7ff0 }],
      ['dst a string', { ...base, dst: 'x' }],
      ['body missing', without('body')],
      ['body an array', { ...base, body: [1] }],
      ['body an integer', { ...base, body: 1 }],
      ['body nil', { ...base, body: null }],
      ['a top-level key the envelope does not declare', { ...base, extra: 1 }],
    ];
    let id = 100;
    for (const [name, frame] of replyable) {
      const a = await answerTo(g.client, { ...frame, id: ++id }, id);
      expect(a.body.code, name).toBe('ERR_BAD_ENVELOPE');
      expectErrReply(a, 'PING', id, 'ERR_BAD_ENVELOPE');
    }
    // Faults in kind, type or id themselves: a PROTOCOL_ERROR, carrying id and type when they could be read.
    const unreplyable: [string, Record<string, unknown>, { id?: number; type?: string }][] = [
      ['kind missing', { ...without('kind'), id: 201 }, { id: 201, type: 'PING' }],
      ['kind unknown', { ...base, kind: 'request', id: 202 }, { id: 202, type: 'PING' }],
      ['kind an integer', { ...base, kind: 1, id: 203 }, { id: 203, type: 'PING' }],
      ['type missing', { ...without('type'), id: 204 }, { id: 204 }],
      ['type lower case', { ...base, type: 'ping', id: 205 }, { id: 205 }],
      ['type of 65 characters', { ...base, type: 'P'.repeat(65), id: 206 }, { id: 206 }],
      ['type an integer', { ...base, type: 7, id: 207 }, { id: 207 }],
      ['id missing', without('id'), { type: 'PING' }],
      ['id negative', { ...base, id: -1 }, { type: 'PING' }],
      ['id 2^32 (as a uint64)', { ...base, id: 2n ** 32n }, { type: 'PING' }],
      ['id a float', { ...base, id: 1.5 }, { type: 'PING' }],
      ['id a string', { ...base, id: '9' }, { type: 'PING' }],
    ];
    for (const [name, frame, about] of unreplyable) {
      const a = await answerTo(g.client, frame, about.id);
      expect(a.body.code, name).toBe('ERR_BAD_ENVELOPE');
      expectProtocolError(a, 'ERR_BAD_ENVELOPE', about);
    }
  });

  it('4: a type not declared gets ERR_UNKNOWN_TYPE as a PROTOCOL_ERROR carrying its id and type', async () => {
    const g = await hv.guest();
    for (const kind of ['req', 'evt', 'res']) {
      const a = await answerTo(g.client, { v: 1, kind, type: 'NO_SUCH_MESSAGE', id: 301, body: {} }, 301);
      expectProtocolError(a, 'ERR_UNKNOWN_TYPE', { id: 301, type: 'NO_SUCH_MESSAGE' });
    }
  });

  it('4: a kind the type cannot travel as gets ERR_WRONG_DIRECTION as a PROTOCOL_ERROR', async () => {
    const g = await hv.guest();
    const cases: [string, Record<string, unknown>][] = [
      ['an event sent as a request', { v: 1, kind: 'req', type: 'EVTCHN_EVENT', id: 401, body: { port: 1, count: 1 } }],
      ['an event sent as an err', { v: 1, kind: 'err', type: 'DOMAIN_UP', id: 402, body: { code: 'ERR_INTERNAL', message: 'x' } }],
      ['a request sent as an event', { v: 1, kind: 'evt', type: 'PING', id: 0, body: { nonce: 1 } }],
    ];
    for (const [name, frame] of cases) {
      const a = await answerTo(g.client, frame, frame.id as number);
      expect(a.body.code, name).toBe('ERR_WRONG_DIRECTION');
      expectProtocolError(a, 'ERR_WRONG_DIRECTION', { type: frame.type as string });
    }
  });

  it('2, 4: body fields: missing, wrong type (a float for an integer too), out of range, undeclared, each with its code and field path in an err reply', async () => {
    const g = await hv.guest();
    const cases: [string, string, Record<string, unknown>, string, string][] = [
      ['missing', 'PING', {}, 'ERR_FIELD_MISSING', 'body.nonce'],
      ['a string for an integer', 'PING', { nonce: 'x' }, 'ERR_FIELD_TYPE', 'body.nonce'],
      ['a float for an integer (SPEC 2)', 'PING', { nonce: 1.5 }, 'ERR_FIELD_TYPE', 'body.nonce'],
      ['bytes for an integer', 'PING', { nonce: new Uint8Array(4) }, 'ERR_FIELD_TYPE', 'body.nonce'],
      ['above the range (2^32 as a uint64: a float would be ERR_FIELD_TYPE)', 'PING', { nonce: 2n ** 32n }, 'ERR_FIELD_RANGE', 'body.nonce'],
      ['negative for an unsigned', 'PING', { nonce: -1 }, 'ERR_FIELD_RANGE', 'body.nonce'],
      ['undeclared', 'PING', { nonce: 1, extra: 2 }, 'ERR_UNKNOWN_FIELD', 'body.extra'],
      ['an array element of the wrong type', 'GNTTAB_MAP_GRANT_REF', { dom: 1, flags: 2, refs: [1, 2.5] }, 'ERR_FIELD_TYPE', 'body.refs[1]'],
      ['an array element out of range', 'GNTTAB_UNMAP_GRANT_REF', { handles: [1, 2, -3] }, 'ERR_FIELD_RANGE', 'body.handles[2]'],
      // Within the structure limits of SPEC 3.3 (65,537 handles is beyond them: see codec-strictness.test.ts).
      ['an array longer than declared', 'DMABUF_PEER_HELLO', { formats: new Array<string>(9).fill('multilevel'), maxPriv: 0, maxPages: 1 }, 'ERR_FIELD_RANGE', 'body.formats'],
      ['a nested field out of range', 'GNTTAB_COPY', { ops: [{ source: { ref: 1, dom: 1, offset: 4096 }, dest: { ref: 1, dom: 1, offset: 0 }, len: 1, flags: 0 }] }, 'ERR_FIELD_RANGE', 'body.ops[0].source.offset'],
      ['a nested field missing', 'GNTTAB_COPY', { ops: [{ source: { ref: 1, dom: 1, offset: 0 }, len: 1, flags: 0 }] }, 'ERR_FIELD_MISSING', 'body.ops[0].dest'],
      ['a nested field undeclared', 'GNTTAB_COPY', { ops: [{ source: { ref: 1, dom: 1, offset: 0, x: 1 }, dest: { ref: 1, dom: 1, offset: 0 }, len: 1, flags: 0 }] }, 'ERR_UNKNOWN_FIELD', 'body.ops[0].source.x'],
      ['a map element that is not a map', 'GNTTAB_COPY', { ops: [7] }, 'ERR_FIELD_TYPE', 'body.ops[0]'],
      ['below the range', 'EVTCHN_SEND', { port: 0 }, 'ERR_FIELD_RANGE', 'body.port'],
      ['a port above its range', 'EVTCHN_STATUS', { port: 4096 }, 'ERR_FIELD_RANGE', 'body.port'],
    ];
    let id = 500;
    for (const [name, type, body, code, field] of cases) {
      const a = await answerTo(g.client, { v: 1, kind: 'req', type, id: ++id, body }, id);
      expect(a.body.code, name).toBe(code);
      expectErrReply(a, type, id, code, field);
    }
    // A string beyond its length and a pattern mismatch (control domain: DOMAIN_CREATE, HELLO caps).
    expectErrReply(await answerTo(hv.control, { v: 1, kind: 'req', type: 'DOMAIN_CREATE', id: 601, body: { name: 'n'.repeat(65), memPages: 1 } }, 601), 'DOMAIN_CREATE', 601, 'ERR_FIELD_RANGE', 'body.name');
    expectErrReply(await answerTo(hv.control, { v: 1, kind: 'req', type: 'DOMAIN_CREATE', id: 602, body: { name: 'n', memPages: 0 } }, 602), 'DOMAIN_CREATE', 602, 'ERR_FIELD_RANGE', 'body.memPages');
    const fresh = await hv.open('caps');
    expectErrReply(await answerTo(fresh, { v: 1, kind: 'req', type: 'HELLO', id: 603, body: { minVersion: 1, maxVersion: 1, domid: 0, token: 'x', caps: ['Not A Cap'] } }, 603), 'HELLO', 603, 'ERR_FIELD_RANGE', 'body.caps[0]');
    // None of these reached the backend's state: nothing was created, the guest still serves.
    expect(await g.client.call('GNTTAB_QUERY_SIZE', {})).toMatchObject({ nrFrames: 4 });
  });

  it('4: the receiver checks in the documented order and reports the first failure', async () => {
    const g = await hv.guest();
    // Plain MessagePack before the envelope: an extension in a frame whose envelope is also bad.
    const extAndBadEnvelope = Buffer.from(packRaw({ v: 0, kind: 'req', type: 'PING', id: 701, body: { nonce: 0xdeadbeef } }));
    const hex = extAndBadEnvelope.toString('hex').replace('cedeadbeef', 'd40100');
    expectErrReply(await answerTo(g.client, Buffer.from(hex, 'hex'), 701), 'PING', 701, 'ERR_MALFORMED');
    // Envelope fields before the type: a bad envelope with an undeclared type, a missing body with an undeclared type.
    expectProtocolError(await answerTo(g.client, { v: 0, kind: 'req', type: 'NO_SUCH_MESSAGE', id: 702, body: {} }, 702), 'ERR_BAD_ENVELOPE');
    expectProtocolError(await answerTo(g.client, { v: 1, kind: 'req', type: 'NO_SUCH_MESSAGE', id: 703 }, 703), 'ERR_BAD_ENVELOPE');
    // The kind before the body.
    expectProtocolError(await answerTo(g.client, { v: 1, kind: 'req', type: 'EVTCHN_EVENT', id: 704, body: { port: 'x' } }, 704), 'ERR_WRONG_DIRECTION');
    // Body fields in the order section 12 lists them, each missing / type / range, then undeclared fields.
    const body = (b: Record<string, unknown>, id: number) => ({ v: 1, kind: 'req', type: 'GNTTAB_MAP_GRANT_REF', id, body: b });
    expectErrReply(await answerTo(g.client, body({ flags: 'x', refs: [1], extra: 1 }, 705), 705), 'GNTTAB_MAP_GRANT_REF', 705, 'ERR_FIELD_MISSING', 'body.dom');
    expectErrReply(await answerTo(g.client, body({ dom: 'x', flags: -1, extra: 1 }, 706), 706), 'GNTTAB_MAP_GRANT_REF', 706, 'ERR_FIELD_TYPE', 'body.dom');
    expectErrReply(await answerTo(g.client, body({ dom: 0x7ff0, flags: 'x', extra: 1 }, 707), 707), 'GNTTAB_MAP_GRANT_REF', 707, 'ERR_FIELD_RANGE', 'body.dom');
    expectErrReply(await answerTo(g.client, body({ dom: 1, flags: 2, extra: 1 }, 708), 708), 'GNTTAB_MAP_GRANT_REF', 708, 'ERR_FIELD_MISSING', 'body.refs');
    expectErrReply(await answerTo(g.client, body({ dom: 1, flags: 2, refs: [], extra: 1 }, 709), 709), 'GNTTAB_MAP_GRANT_REF', 709, 'ERR_UNKNOWN_FIELD', 'body.extra');
  });

  it('4: a bad frame changes nothing and affects no other domain', async () => {
    const g = await hv.guest();
    const bystander = await hv.guest();
    g.table.publish(1, bystander.domid, 1, false);
    const before = await hv.statsOf(g.domid);
    for (const frame of [
      { v: 1, kind: 'req', type: 'GNTTAB_SETUP_TABLE', id: 801, body: { nrFrames: 8, extra: 1 } },
      { v: 1, kind: 'req', type: 'EVTCHN_ALLOC_UNBOUND', id: 802, body: { remoteDom: bystander.domid, x: 0 } },
      { v: 1, kind: 'req', type: 'GNTTAB_MAP_GRANT_REF', id: 803, body: { dom: g.domid, flags: 2.5, refs: [1] } },
    ]) {
      expect((await answerTo(bystander.client, frame, frame.id)).kind).toBe('err');
    }
    expect(await g.client.call('GNTTAB_QUERY_SIZE', {})).toMatchObject({ nrFrames: 4 });
    expect(await hv.statsOf(g.domid)).toEqual(before);
    expect(await hv.statsOf(bystander.domid)).toMatchObject({ ports: 0, mappings: 0 });
    expect(g.table.loadHeader(1).flags & 0x18).toBe(0);
  });
});
