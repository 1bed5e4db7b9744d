/**
 * Golden vectors: the exact bytes of every message of each protocol
 * version, built from the samples (protocol/vectors/v1.json, v2.json).
 * JSON cannot hold bytes, so a `bin` value is written as { "$bin": "<hex>" }
 * and a packed array (SPEC.md 4.1) as its elements, { "$u32": [1, 2] } or
 * { "$i16": [0, -3] } (the element type names the typed array).
 */
import { encodeFrame } from '../codec.ts';
import type { Envelope, Kind } from '../envelope.ts';
import { messagesAt, revisions } from '../registry.ts';
import { MIN_VERSION } from '../version.ts';
import { samplesFor } from '../vectors/samples.ts';

/** Where the vectors of protocol version `version` are committed. */
export function vectorsPath(version: number): URL {
  return new URL(`../vectors/v${version}.json`, import.meta.url);
}

/** Where the v1 vectors are committed. */
export const VECTORS_PATH = vectorsPath(1);

/** Every version that has declarations, each with committed vectors. */
export const VECTOR_VERSIONS: readonly number[] = (() => {
  const newest = Math.max(...[...revisions.values()].flat().map((d) => d.since));
  return Array.from({ length: newest - MIN_VERSION + 1 }, (_, i) => MIN_VERSION + i);
})();

/** Typed arrays of packed fields, by the JSON key that names them. */
const PACKED_JSON = {
  $u16: Uint16Array, $u32: Uint32Array, $i8: Int8Array, $i16: Int16Array, $i32: Int32Array,
} as const;

/** One golden vector. */
export interface Vector {
  name: string;
  envelope: unknown;
  hex: string;
}

/** Replaces byte strings with { $bin: hex } (for JSON). */
export function toJsonValue(value: unknown): unknown {
  if (value instanceof Uint8Array) return { $bin: Buffer.from(value).toString('hex') };
  for (const [key, ctor] of Object.entries(PACKED_JSON)) if (value instanceof ctor) return { [key]: Array.from(value as ArrayLike<number>) };
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
    const keys = Object.keys(rec);
    if (keys.length === 1 && Object.hasOwn(PACKED_JSON, keys[0]!) && Array.isArray(rec[keys[0]!])) {
      return PACKED_JSON[keys[0] as keyof typeof PACKED_JSON].from(rec[keys[0]!] as number[]);
    }
    return Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, fromJsonValue(v)]));
  }
  return value;
}

/**
 * The envelopes a message's sample yields in `version`: req+res+err for a
 * request, evt for an event. v1 frames carry v = 1; every frame of a later
 * version carries that version.
 */
export function sampleEnvelopes(type: string, version = 1): Envelope[] {
  const decl = messagesAt(version).get(type);
  const sample = samplesFor(version)[type];
  if (!decl || !sample) return [];
  const route = { ...(sample.src !== undefined ? { src: sample.src } : {}), ...(sample.dst !== undefined ? { dst: sample.dst } : {}) };
  const env = (kind: Kind, id: number, body: Record<string, unknown> | undefined): Envelope[] =>
    body ? [{ v: version, kind, type, id, ...route, body }] : [];
  if (decl.kind === 'event') return env('evt', 0, sample.evt);
  return [
    ...env('req', 17, sample.req),
    ...env('res', 17, sample.res),
    ...env('err', 17, { code: 'ERR_FIELD_RANGE', message: 'body: example error', field: 'body' }),
  ];
}

/** Every vector of `version`, in declaration order. */
export function buildVectors(version = 1): Vector[] {
  const out: Vector[] = [];
  for (const type of messagesAt(version).keys()) {
    for (const env of sampleEnvelopes(type, version)) {
      out.push({ name: `${type}.${env.kind}`, envelope: toJsonValue(env), hex: Buffer.from(encodeFrame(env)).toString('hex') });
    }
  }
  return out;
}
