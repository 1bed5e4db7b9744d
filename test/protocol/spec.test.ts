import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame } from '../../protocol/codec.ts';
import type { Envelope } from '../../protocol/envelope.ts';
import { ErrorCodes } from '../../protocol/errors.ts';
import { messages } from '../../protocol/registry.ts';
import { fillGenerated } from '../../protocol/tools/spec-tables.ts';
import { buildVectors, fromJsonValue, VECTORS_PATH, type Vector } from '../../protocol/tools/vectors.ts';

const specText = readFileSync(new URL('../../protocol/SPEC.md', import.meta.url), 'utf8');
const committed = JSON.parse(readFileSync(VECTORS_PATH, 'utf8')) as Vector[];

describe('SPEC.md', () => {
  it('has up-to-date generated sections (run `npm run spec`)', () => {
    expect(fillGenerated(specText)).toBe(specText);
  });

  it('documents every message and every error code', () => {
    for (const type of messages.keys()) expect(specText, type).toContain(`#### ${type}`);
    for (const code of Object.keys(ErrorCodes)) expect(specText, code).toContain(`\`${code}\``);
  });
});

describe('golden vectors', () => {
  it('cover every message in every kind it travels as', () => {
    const names = new Set(committed.map((v) => v.name));
    for (const [type, decl] of messages) {
      const kinds = decl.kind === 'event' ? ['evt'] : ['req', 'res', 'err'];
      for (const kind of kinds) expect(names, `${type}.${kind}`).toContain(`${type}.${kind}`);
    }
  });

  it('are what the encoder produces today (run `npm run spec` only for a deliberate change)', () => {
    expect(buildVectors()).toEqual(committed);
  });

  it('decode to their envelopes and re-encode to the same bytes', () => {
    for (const vector of committed) {
      const bytes = Buffer.from(vector.hex, 'hex');
      const decoded = decodeFrame(bytes);
      expect(decoded.ok, vector.name).toBe(true);
      const expected = fromJsonValue(vector.envelope) as Envelope;
      if (decoded.ok) expect(decoded.env, vector.name).toEqual(expected);
      expect(Buffer.from(encodeFrame(expected)).toString('hex'), vector.name).toBe(vector.hex);
    }
  });
});
