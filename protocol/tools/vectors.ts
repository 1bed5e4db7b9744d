/**
 * Golden vectors: the exact bytes of every message, built from the samples.
 * JSON cannot hold bytes, so a `bin` value is written as { "$bin": "<hex>" }.
 */
import { encodeFrame } from '../codec.ts';
import type { Envelope, Kind } from '../envelope.ts';
import { messages } from '../registry.ts';
import { samples } from '../vectors/samples.ts';

/** Where the vectors are committed. */
export const VECTORS_PATH = new URL('../vectors/v1.json', import.meta.url);

/** One golden vector. */
export interface Vector {
  name: string;
  envelope: unknown;
  hex: string;
}

/** Replaces byte strings with { $bin: hex } (for JSON). */
export function toJsonValue(value: unknown): unknown {
  if (value instanceof Uint8Array) return { $bin: Buffer.from(value).toString('hex') };
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJsonValue(v)]));
  return value;
}

/** Inverse of toJsonValue. */
export function fromJsonValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(fromJsonValue);
  if (value && typeof value === 'object') {
    const rec = value as Record<string, unknown>;
    if (typeof rec.$bin === 'string' && Object.keys(rec).length === 1) return Uint8Array.from(Buffer.from(rec.$bin, 'hex'));
    return Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, fromJsonValue(v)]));
  }
  return value;
}

/** The envelopes a message's sample yields: req+res+err for a request, evt for an event. */
export function sampleEnvelopes(type: string): Envelope[] {
  const decl = messages.get(type);
  const sample = samples[type];
  if (!decl || !sample) return [];
  const route = { ...(sample.src !== undefined ? { src: sample.src } : {}), ...(sample.dst !== undefined ? { dst: sample.dst } : {}) };
  const env = (kind: Kind, id: number, body: Record<string, unknown> | undefined): Envelope[] =>
    body ? [{ v: decl.since, kind, type, id, ...route, body }] : [];
  if (decl.kind === 'event') return env('evt', 0, sample.evt);
  return [
    ...env('req', 17, sample.req),
    ...env('res', 17, sample.res),
    ...env('err', 17, { code: 'ERR_FIELD_RANGE', message: 'body: example error', field: 'body' }),
  ];
}

/** Every vector, in declaration order. */
export function buildVectors(): Vector[] {
  const out: Vector[] = [];
  for (const type of messages.keys()) {
    for (const env of sampleEnvelopes(type)) {
      out.push({ name: `${type}.${env.kind}`, envelope: toJsonValue(env), hex: Buffer.from(encodeFrame(env)).toString('hex') });
    }
  }
  return out;
}
