/**
 * Frame codec: one MessagePack map per WebSocket binary frame.
 *
 * Decoding checks, in the order SPEC.md section 4 gives: frame size, plain
 * MessagePack structure (no extension types), the envelope fields (`body`
 * included: present and a map), that the type is declared in the frame's
 * version and may travel with this kind, and the body against its
 * declaration (validateStruct's order). Encoding validates too, so a bug of ours never puts an
 * undeclared value on the wire, and writes every integer as a MessagePack integer.
 */
import { Packr } from 'msgpackr';
import { envelopeFields, errorBodyFields, type Envelope, type Kind } from './envelope.ts';
import { ProtocolError } from './errors.ts';
import { MAX_FRAME_BYTES } from './limits.ts';
import type { MessageDecl } from './message.ts';
import { STRUCTURE_LIMITS } from './frame-limits.ts';
import { packedToWire } from './packed.ts';
import { PlainDecoder, type StructureLimits } from './plain-msgpack.ts';
import { readEnvelopeHead } from './readable-head.ts';
import { lookupMessage } from './registry.ts';
import type { FieldType, Fields } from './schema.ts';
import { isPlainMap, validateDecodedInSlices, validateStruct } from './validate.ts';

// Plain maps only: no records, no bundled strings, no structured clone.
const packr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false, bundleStrings: false, variableMapSize: true });

/** Fields of `body` for a message of this declaration and kind, or null if the kind is not allowed. */
export function bodyFields(decl: MessageDecl, kind: Kind): Fields | null {
  if (kind === 'err') return decl.kind === 'request' ? errorBodyFields : null;
  if (decl.kind === 'event') return kind === 'evt' ? decl.body : null;
  if (kind === 'req') return decl.request;
  if (kind === 'res') return decl.response;
  return null;
}

/** What could be read of a frame that failed to decode, so that the error reply can be addressed. */
export interface PartialEnvelope { kind?: Kind; type?: string; id?: number; v?: number }

/** The result of decoding a frame. */
export type DecodeResult =
  | { ok: true; env: Envelope; decl: MessageDecl }
  | { ok: false; error: ProtocolError; partial: PartialEnvelope };

/** Decodes and validates one frame. Never throws. */
export function decodeFrame(bytes: Uint8Array, maxFrameBytes = MAX_FRAME_BYTES, limits: StructureLimits = STRUCTURE_LIMITS): DecodeResult {
  return new FrameDecoding(bytes, maxFrameBytes, limits).step(Infinity)!;
}

/**
 * The decoding and validation of one frame, resumable: each step() does at
 * most about `budget` values of work (the decoder's values, then the body's
 * batch elements weighted by their declared size) and returns the result
 * once the frame is done, so that a receiver can serve other connections
 * between the steps of a large frame (SPEC 3.7, "work per frame"). The
 * checks, their order and so the result are those of decodeFrame, whatever
 * the budget.
 */
export class FrameDecoding {
  private decoder: PlainDecoder | undefined;
  private body: Generator<void, Record<string, unknown>, void> | undefined;
  private head: { env: Omit<Envelope, 'body'>; decl: MessageDecl } | undefined;
  private result: DecodeResult | undefined;

  constructor(private readonly bytes: Uint8Array, private readonly maxFrameBytes = MAX_FRAME_BYTES, private readonly limits: StructureLimits = STRUCTURE_LIMITS) {}

  /** Does about `budget` more values of work; the result once the frame is decoded and validated, else undefined. Never throws. */
  step(budget: number): DecodeResult | undefined {
    if (this.result) return this.result;
    try {
      if (!this.body) {
        if (!this.decoder) {
          if (this.bytes.byteLength > this.maxFrameBytes) {
            throw new ProtocolError('ERR_FRAME_TOO_LARGE', `frame of ${this.bytes.byteLength} bytes exceeds ${this.maxFrameBytes}`);
          }
          this.decoder = new PlainDecoder(this.bytes, this.limits);
        }
        if (!this.decoder.step(budget)) return undefined;
        this.checkHead(this.decoder.result, budget);
      }
      const next = this.body!.next();
      if (!next.done) return undefined;
      this.result = { ok: true, env: { ...this.head!.env, body: next.value } as Envelope, decl: this.head!.decl };
    } catch (e) {
      const error = e instanceof ProtocolError ? e : new ProtocolError('ERR_MALFORMED', `malformed frame: ${(e as Error).message}`);
      // What can be read of a refused frame, by the bytes, so that the refusal can be addressed (SPEC 4, "Readable id").
      const partial: PartialEnvelope = error.code === 'ERR_FRAME_TOO_LARGE' ? {} : readEnvelopeHead(this.bytes);
      this.result = { ok: false, error, partial };
    }
    this.decoder = undefined;
    this.body = undefined;
    return this.result;
  }

  /** SPEC 4 checks 3-5 on the decoded map, then the body's validation (check 6) is set up. */
  private checkHead(raw: Record<string, unknown>, budget: number): void {
    const { body, ...head } = raw;
    let env;
    try {
      env = validateStruct(envelopeFields, head, 'envelope');
    } catch (e) {
      throw asEnvelopeError(e);
    }
    // `body` is an envelope field too (SPEC 4): checked with the others, before the type.
    if (body === undefined) throw new ProtocolError('ERR_BAD_ENVELOPE', 'envelope.body: required field is absent', 'envelope.body');
    if (!isPlainMap(body)) throw new ProtocolError('ERR_BAD_ENVELOPE', 'envelope.body: expected a map', 'envelope.body');
    const decl = lookupMessage(env.type, env.v);
    if (!decl) throw new ProtocolError('ERR_UNKNOWN_TYPE', `message type ${env.type} is not declared in version ${env.v}`);
    const fields = bodyFields(decl, env.kind);
    if (!fields) throw new ProtocolError('ERR_WRONG_DIRECTION', `${env.type} is ${decl.kind === 'event' ? 'an event' : 'a request'} and cannot travel as '${env.kind}'`);
    this.head = { env: env as Omit<Envelope, 'body'>, decl };
    this.body = validateDecodedInSlices(fields, body, 'body', budget);
  }
}

/** Encodes one frame after validating it against its declaration. Throws ProtocolError on a bad value. */
export function encodeFrame(env: Envelope): Uint8Array {
  const head = validateStruct(envelopeFields, { v: env.v, kind: env.kind, type: env.type, id: env.id, src: env.src, dst: env.dst }, 'envelope');
  const decl = lookupMessage(env.type, env.v);
  if (!decl) throw new ProtocolError('ERR_UNKNOWN_TYPE', `message type ${env.type} is not declared in version ${env.v}`);
  const fields = bodyFields(decl, env.kind);
  if (!fields) throw new ProtocolError('ERR_WRONG_DIRECTION', `${env.type} cannot travel as '${env.kind}'`);
  const body = validateStruct(fields, env.body, 'body');
  return packr.pack({ ...head, body: widenLargeInts(fields, packedToWire(fields, body)) });
}

/**
 * msgpackr writes a number beyond 32 bits as a float64; SPEC 2 wants every
 * integer to travel as a MessagePack integer. Declared fields that may hold
 * such values are given to it as bigints, which it writes as int64/uint64.
 */
function widenLargeInts(fields: Fields, body: Record<string, unknown>): Record<string, unknown> {
  if (!fieldsMayBeWide(fields)) return body;
  const out: Record<string, unknown> = { ...body };
  for (const [name, field] of Object.entries(fields)) {
    if (out[name] !== undefined) out[name] = widenValue(field.type, out[name]);
  }
  return out;
}

function widenValue(type: FieldType, value: unknown): unknown {
  switch (type.kind) {
    case 'uint':
    case 'int':
      return typeof value === 'number' && (value > 0xffffffff || value < -0x80000000) ? BigInt(value) : value;
    case 'array':
      return typeMayBeWide(type.of) && Array.isArray(value) ? value.map((v) => widenValue(type.of, v)) : value;
    case 'struct':
      return widenLargeInts(type.fields, value as Record<string, unknown>);
    default:
      return value;
  }
}

const wideCache = new WeakMap<Fields, boolean>();

function fieldsMayBeWide(fields: Fields): boolean {
  let wide = wideCache.get(fields);
  if (wide === undefined) {
    wide = Object.values(fields).some((f) => typeMayBeWide(f.type));
    wideCache.set(fields, wide);
  }
  return wide;
}

function typeMayBeWide(type: FieldType): boolean {
  switch (type.kind) {
    case 'uint':
    case 'int':
      return type.max > 0xffffffff || type.min < -0x80000000;
    case 'array':
      return typeMayBeWide(type.of);
    case 'struct':
      return fieldsMayBeWide(type.fields);
    default:
      return false;
  }
}

function asEnvelopeError(e: unknown): ProtocolError {
  if (e instanceof ProtocolError) return new ProtocolError('ERR_BAD_ENVELOPE', e.message, e.field);
  return new ProtocolError('ERR_BAD_ENVELOPE', String(e));
}
