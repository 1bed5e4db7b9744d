/**
 * What SPEC.md says the backend must answer to one hostile frame, and the
 * check of what it did answer.
 *
 * The reference codec (protocol/codec.ts) decides whether a frame is
 * refused by SPEC 3-4 and with which code; the answer is then determined
 * (section 4, "Answering a bad frame"): an `err` reply with the frame's type
 * and id when its id is readable and it is a request of a declared request
 * type, else a PROTOCOL_ERROR, both with that code and the connection kept;
 * a frame over the size limit closes the connection with 1009. A frame the
 * codec accepts is answered by the backend's semantics, which the oracle
 * does not predict; for a backend request it demands exactly one reply with
 * the frame's id.
 */
import { decodeFrame, ErrorCodes, lookupMessage, type Envelope } from '../../protocol/index.ts';
import type { Exchange } from './raw-client.ts';

/** The expected answer to a frame. */
export type Expected =
  | { answer: 'err'; type: string; id: number; code: string; field?: string }
  | { answer: 'PROTOCOL_ERROR'; code: string; field?: string }
  | { answer: 'close'; code: number }
  /** A well-formed backend request: exactly one res or err with this id. */
  | { answer: 'one-reply'; type: string; id: number }
  /** Well-formed and not predicted (routed traffic, replies, events). */
  | { answer: 'any' };

/** The expected answer on a connection whose largest accepted frame is `maxFrameBytes`, in protocol `version` (the one its HELLO negotiated). */
export function expectedAnswer(bytes: Uint8Array, maxFrameBytes: number, version = 1): Expected {
  if (bytes.byteLength > maxFrameBytes) return { answer: 'close', code: 1009 };
  const r = decodeFrame(bytes, maxFrameBytes);
  if (!r.ok) {
    const { partial } = r;
    const field = r.error.field;
    if (partial.kind === 'req' && partial.id !== undefined && partial.type !== undefined && lookupMessage(partial.type, version)?.kind === 'request') {
      return { answer: 'err', type: partial.type, id: partial.id, code: r.error.code, ...(field !== undefined ? { field } : {}) };
    }
    return { answer: 'PROTOCOL_ERROR', code: r.error.code, ...(field !== undefined ? { field } : {}) };
  }
  const { env, decl } = r;
  if (env.kind === 'req' && decl.kind === 'request' && decl.route === 'hv') return { answer: 'one-reply', type: env.type, id: env.id };
  return { answer: 'any' };
}

/** The decoded envelope of a frame, if the reference codec accepts it. */
export function decoded(bytes: Uint8Array): Envelope | undefined {
  const r = decodeFrame(bytes);
  return r.ok ? r.env : undefined;
}

/** Describes how `got` disagrees with `expected` and SPEC.md, or returns undefined if it agrees. */
export function disagreement(expected: Expected, got: Exchange): string | undefined {
  if (got.bad.length > 0) return got.bad[0];
  if (got.stalled) return 'no answer and no close within the deadline (stalled)';
  const about = got.frames.filter((e) => e.type === 'PROTOCOL_ERROR' || e.kind === 'res' || e.kind === 'err');
  for (const e of about) {
    const code = (e.body as { code?: string }).code;
    if (e.kind === 'err' || e.type === 'PROTOCOL_ERROR') {
      if (code === undefined || !Object.hasOwn(ErrorCodes, code)) return `code ${code} is not in SPEC 13`;
    }
  }
  switch (expected.answer) {
    case 'close':
      return got.closed === expected.code ? undefined : `expected close ${expected.code}, got ${got.closed ?? 'no close'}: ${summary(about)}`;
    case 'err':
    case 'PROTOCOL_ERROR': {
      if (got.closed !== undefined) return `connection closed (${got.closed}) where SPEC 4 keeps it open`;
      if (about.length !== 1) return `expected one answer (${expected.answer} ${expected.code}), got ${about.length}: ${summary(about)}`;
      const a = about[0]!;
      const body = a.body as { code?: string; field?: string };
      if (expected.answer === 'err' && (a.kind !== 'err' || a.type !== expected.type || a.id !== expected.id)) return `expected err ${expected.type} #${expected.id}, got ${summary(about)}`;
      if (expected.answer === 'PROTOCOL_ERROR' && a.type !== 'PROTOCOL_ERROR') return `expected PROTOCOL_ERROR, got ${summary(about)}`;
      if (body.code !== expected.code) return `expected ${expected.code}, got ${body.code}`;
      if (expected.field !== undefined && body.field !== expected.field.slice(0, 256)) return `expected field ${expected.field}, got ${body.field}`;
      return undefined;
    }
    case 'one-reply': {
      if (got.closed !== undefined) return `connection closed (${got.closed}) on a well-formed request`;
      const replies = about.filter((e) => e.kind !== 'evt' && e.id === expected.id && e.type === expected.type);
      return replies.length === 1 ? undefined : `expected one reply to ${expected.type} #${expected.id}, got ${replies.length}: ${summary(about)}`;
    }
    case 'any':
      return undefined;
  }
}

function summary(frames: Envelope[]): string {
  return frames.map((e) => `${e.kind} ${e.type} #${e.id} ${JSON.stringify(e.body).slice(0, 80)}`).join('; ') || 'nothing';
}
