import { describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import { decodeFrame, encodeFrame } from '../../protocol/codec.ts';
import { negotiateVersion } from '../../protocol/version.ts';

const plain = new Packr({ useRecords: false, variableMapSize: true });

function decodeError(value: unknown): string {
  const r = decodeFrame(plain.pack(value));
  if (r.ok) throw new Error('expected a decode error');
  return r.error.code;
}

describe('codec', () => {
  it('round-trips a declared request', () => {
    const bytes = encodeFrame({ v: 1, kind: 'req', type: 'PING', id: 7, body: { nonce: 42 } });
    const r = decodeFrame(bytes);
    expect(r.ok && r.env).toEqual({ v: 1, kind: 'req', type: 'PING', id: 7, body: { nonce: 42 } });
  });

  it('rejects bad envelopes, types and fields with distinct codes', () => {
    expect(decodeError([1, 2, 3])).toBe('ERR_MALFORMED');
    expect(decodeError({ v: 1, kind: 'req', type: 'NOPE', id: 1, body: {} })).toBe('ERR_UNKNOWN_TYPE');
    expect(decodeError({ v: 1, kind: 'bad', type: 'PING', id: 1, body: {} })).toBe('ERR_BAD_ENVELOPE');
    expect(decodeError({ v: 1, kind: 'req', type: 'PING', id: 1, body: { nonce: 'x' } })).toBe('ERR_FIELD_TYPE');
    expect(decodeError({ v: 1, kind: 'req', type: 'PING', id: 1, body: { nonce: -1 } })).toBe('ERR_FIELD_RANGE');
    expect(decodeError({ v: 1, kind: 'req', type: 'PING', id: 1, body: {} })).toBe('ERR_FIELD_MISSING');
    expect(decodeError({ v: 1, kind: 'req', type: 'PING', id: 1, body: { nonce: 1, extra: 2 } })).toBe('ERR_UNKNOWN_FIELD');
    expect(decodeError({ v: 1, kind: 'evt', type: 'PING', id: 0, body: { nonce: 1 } })).toBe('ERR_WRONG_DIRECTION');
  });

  it('checks in the order SPEC.md section 4 gives: body with the envelope, before the type; undeclared fields after the declared ones', () => {
    expect(decodeError({ v: 1, kind: 'req', type: 'NOPE', id: 1 })).toBe('ERR_BAD_ENVELOPE');
    expect(decodeError({ v: 1, kind: 'req', type: 'PING', id: 1, body: [1] })).toBe('ERR_BAD_ENVELOPE');
    expect(decodeError({ v: 1, kind: 'req', type: 'PING', id: 1, body: { extra: 2 } })).toBe('ERR_FIELD_MISSING');
    expect(decodeError({ v: 1, kind: 'req', type: 'GNTTAB_MAP_GRANT_REF', id: 1, body: { dom: 'x', extra: 1 } })).toBe('ERR_FIELD_TYPE');
  });

  it('refuses extension types and trailing bytes', () => {
    const withExt = Uint8Array.from([0x81, 0xa1, 0x61, 0xd4, 0x72, 0x00]);
    const r = decodeFrame(withExt);
    expect(!r.ok && r.error.code).toBe('ERR_MALFORMED');
    const good = encodeFrame({ v: 1, kind: 'req', type: 'PING', id: 7, body: { nonce: 1 } });
    const trailing = new Uint8Array(good.length + 1);
    trailing.set(good);
    const t = decodeFrame(trailing);
    expect(!t.ok && t.error.code).toBe('ERR_MALFORMED');
  });

  it('refuses oversized frames before decoding', () => {
    const r = decodeFrame(new Uint8Array(100), 64);
    expect(!r.ok && r.error.code).toBe('ERR_FRAME_TOO_LARGE');
  });

  it('negotiates the highest common version or refuses', () => {
    expect(negotiateVersion({ min: 1, max: 5 }, { min: 1, max: 3 })).toBe(3);
    expect(negotiateVersion({ min: 4, max: 5 }, { min: 1, max: 3 })).toBeNull();
    expect(negotiateVersion({ min: 3, max: 1 }, { min: 1, max: 3 })).toBeNull();
  });
});
