/**
 * SPEC 3.7 "work per frame": a frame decoded in steps (FrameDecoding) gives
 * exactly what decodeFrame gives at once, whatever the step's budget: the
 * same envelope and body, or the same first error (code, field, message)
 * and the same readable head. Tried on every golden vector, every input of
 * the stress corpus, mutations of the vectors, and a maximal GNTTAB_COPY
 * that fails at its last op.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame, FrameDecoding, type DecodeResult } from '../../protocol/codec.ts';
import { loadCorpus } from '../../vm-sim/stress/corpus.ts';

const vectors = (['v1', 'v2'] as const).flatMap((v) =>
  (JSON.parse(readFileSync(new URL(`../../protocol/vectors/${v}.json`, import.meta.url), 'utf8')) as { name: string; hex: string }[])
    .map((e) => ({ name: `${v} ${e.name}`, bytes: Uint8Array.from(Buffer.from(e.hex, 'hex')) })));

/** Steps `bytes` with `budget`, counting the steps. */
function stepped(bytes: Uint8Array, budget: number): { result: DecodeResult; steps: number } {
  const d = new FrameDecoding(bytes);
  for (let steps = 1; ; steps++) {
    const result = d.step(budget);
    if (result) return { result, steps };
  }
}

function comparable(r: DecodeResult): unknown {
  return r.ok ? { env: r.env, type: r.decl.type } : { code: r.error.code, field: r.error.field, message: r.error.message, partial: r.partial };
}

/** Deterministic mutations of a frame: one byte changed at several places, a truncation, a trailing byte. */
function mutations(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [bytes.subarray(0, bytes.length - 1), Uint8Array.from([...bytes, 0xc0])];
  for (let at = 0; at < bytes.length; at += Math.max(1, Math.floor(bytes.length / 7))) {
    for (const b of [0xc1, 0xcb, 0xdc, 0xa3, 0x00]) {
      const m = Uint8Array.from(bytes);
      m[at] = b;
      out.push(m);
    }
  }
  return out;
}

describe('FrameDecoding (SPEC 3.7, work per frame)', () => {
  const inputs = [
    ...vectors,
    ...loadCorpus().map(({ file, entry }) => ({ name: `corpus ${file}`, bytes: Uint8Array.from(Buffer.from(entry.frameHex, 'hex')) })),
  ];

  it('gives what decodeFrame gives, whatever the budget, for every golden vector, corpus input and mutation of them', () => {
    let frames = 0;
    for (const { name, bytes } of inputs) {
      // The corpus's large frames (megabytes of keys) are stepped in larger steps and not mutated: the test stays short.
      const large = bytes.length > 4096;
      for (const frame of large ? [bytes] : [bytes, ...mutations(bytes)]) {
        const whole = comparable(decodeFrame(frame));
        for (const budget of large ? [4096] : [1, 2, 5, 64]) {
          expect(comparable(stepped(frame, budget).result), `${name}, budget ${budget}`).toEqual(whole);
        }
        frames++;
      }
    }
    expect(frames).toBeGreaterThan(1000);
  });

  it('splits a maximal v1 GNTTAB_COPY into steps and finds the same fault at its last op', () => {
    const ops = Array.from({ length: 65_536 }, (_, i) => ({
      source: { ref: i, dom: 1, offset: 0 }, dest: { ref: i, dom: 2, offset: 0 }, len: 4096, flags: i === 65_535 ? 3 : 0,
    }));
    const good = encodeFrame({ v: 1, kind: 'req', type: 'GNTTAB_COPY', id: 9, body: { ops } });
    // flags 3 -> 8 in the last op: its value is the frame's last byte.
    const bad = Uint8Array.from(good);
    expect(bad[bad.length - 1]).toBe(3);
    bad[bad.length - 1] = 8;

    const ok = stepped(good, 8192);
    expect(ok.result.ok).toBe(true);
    // 1,376,272 values decoded 8,192 at a time, then 65,536 ops validated 8,192 / 21 = 390 at a time.
    expect(ok.steps).toBeGreaterThan(300);
    const body = ok.result.ok ? ok.result.env.body as { ops: unknown[] } : undefined;
    expect(body?.ops).toHaveLength(65_536);
    expect(body?.ops[65_535]).toEqual(ops[65_535]);

    const whole = decodeFrame(bad);
    expect(!whole.ok && whole.error.field).toBe('body.ops[65535].flags');
    expect(comparable(stepped(bad, 8192).result)).toEqual(comparable(whole));
  });
});
