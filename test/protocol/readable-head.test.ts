import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame } from '../../protocol/codec.ts';
import { readEnvelopeHead } from '../../protocol/readable-head.ts';

const ping = (id: number) => Buffer.from(encodeFrame({ v: 1, kind: 'req', type: 'PING', id, body: { nonce: 0xdeadbeef } }));
const splice = (frame: Buffer, bytes: string) => Buffer.from(frame.toString('hex').replace('cedeadbeef', bytes), 'hex');

describe('SPEC 4 "Readable id"', () => {
  it('reads kind, type, id and v of a well-formed frame', () => {
    expect(readEnvelopeHead(ping(7))).toEqual({ v: 1, kind: 'req', type: 'PING', id: 7 });
  });

  it('walks over extension values and ignores bytes after the map', () => {
    expect(readEnvelopeHead(splice(ping(8), 'c7020001ff'))).toMatchObject({ id: 8, type: 'PING' });
    expect(readEnvelopeHead(Buffer.concat([ping(9), Buffer.from([0xc1])]))).toMatchObject({ id: 9 });
  });

  it('stops at 0xc1, a non-str key, truncation or nesting beyond 16: keys after it are not readable', () => {
    const late = Buffer.from(pack({ v: 1, kind: 'req', type: 'PING', body: { nonce: 0xdeadbeef }, id: 10 }));
    expect(readEnvelopeHead(splice(late, 'c1'))).toEqual({ v: 1, kind: 'req', type: 'PING' });
    let deep: unknown = 0;
    for (let i = 0; i < 15; i++) deep = [deep];
    expect(readEnvelopeHead(Buffer.from(pack({ kind: 'req', body: { x: deep }, id: 11 })))).toEqual({ kind: 'req' });
    expect(readEnvelopeHead(ping(12).subarray(0, 20))).not.toHaveProperty('id');
    expect(readEnvelopeHead(Buffer.from([0x81, 0x01, 0x02]))).toEqual({});
  });

  it('counts only integers in range as id, and the last of repeated keys', () => {
    expect(readEnvelopeHead(Buffer.from(pack({ id: 1.5 })))).toEqual({});
    expect(readEnvelopeHead(Buffer.from(pack({ id: 2 ** 32 })))).toEqual({});
    expect(readEnvelopeHead(Buffer.from(pack({ id: -1 })))).toEqual({});
    // { id: 3, id: 'x' }: the last value counts, and it is not an integer.
    expect(readEnvelopeHead(Buffer.from('82a26964 03 a26964 a178'.replace(/ /g, ''), 'hex'))).toEqual({});
  });

  it('the decoder addresses its refusal with what was readable', () => {
    const result = decodeFrame(splice(ping(13), 'd40100'));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.partial).toMatchObject({ kind: 'req', type: 'PING', id: 13 });
  });
});
