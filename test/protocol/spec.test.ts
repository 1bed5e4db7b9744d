import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame } from '../../protocol/codec.ts';
import type { Envelope } from '../../protocol/envelope.ts';
import { ErrorCodes } from '../../protocol/errors.ts';
import { messages, messagesAt } from '../../protocol/registry.ts';
import { fillGenerated } from '../../protocol/tools/spec-tables.ts';
import { buildVectors, fromJsonValue, VECTOR_VERSIONS, vectorsPath, type Vector } from '../../protocol/tools/vectors.ts';

const specText = readFileSync(new URL('../../protocol/SPEC.md', import.meta.url), 'utf8');

describe('SPEC.md', () => {
  it('has up-to-date generated sections (run `npm run spec`)', () => {
    expect(fillGenerated(specText)).toBe(specText);
  });

  it('documents every message and every error code', () => {
    for (const type of messages.keys()) expect(specText, type).toContain(`#### ${type}`);
    for (const code of Object.keys(ErrorCodes)) expect(specText, code).toContain(`\`${code}\``);
  });
});

describe.each(VECTOR_VERSIONS.map((version) => ({ version })))('golden vectors of v$version', ({ version }) => {
  const committed = JSON.parse(readFileSync(vectorsPath(version), 'utf8')) as Vector[];

  it('cover every message of the version in every kind it travels as', () => {
    const names = new Set(committed.map((v) => v.name));
    for (const [type, decl] of messagesAt(version)) {
      const kinds = decl.kind === 'event' ? ['evt'] : ['req', 'res', 'err'];
      for (const kind of kinds) expect(names, `${type}.${kind}`).toContain(`${type}.${kind}`);
    }
    expect(committed.every((v) => (v.envelope as { v: number }).v === version)).toBe(true);
  });

  it('are what the encoder produces today (run `npm run spec` only for a deliberate change)', () => {
    expect(buildVectors(version)).toEqual(committed);
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

describe('protocol versions', () => {
  it('v2 keeps every v1 message and changes only the declared revisions', () => {
    const v1 = messagesAt(1);
    const v2 = messagesAt(2);
    for (const [type, decl] of v1) {
      expect(v2.has(type), type).toBe(true);
      if (v2.get(type) !== decl) expect(v2.get(type)!.since, type).toBe(2);
    }
    const revised = [...v2].filter(([type, d]) => v1.has(type) && v1.get(type) !== d).map(([type]) => type).sort();
    expect(revised).toEqual(['GNTTAB_COPY', 'GNTTAB_MAP_GRANT_REF', 'GNTTAB_UNMAP_GRANT_REF', 'HV_STATS']);
    expect([...v2.keys()].filter((type) => !v1.has(type)).sort()).toEqual(['GNTTAB_MAP_DIRECTORY', 'HV_GRANT_STATS']);
    // The envelope, HELLO and every routed message are identical, so a v1 and a v2 domain can talk through the backend.
    for (const [type, decl] of v2) if (decl.kind === 'event' || decl.route === 'peer' || type === 'HELLO') expect(v1.get(type), type).toBe(decl);
  });

});
