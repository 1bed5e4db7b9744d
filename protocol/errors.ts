/**
 * Protocol error codes. Each code is a stable string carried in the `code`
 * field of an `err` reply; SPEC.md lists them all (a test checks that).
 */
export const ErrorCodes = {
  // Transport and envelope
  ERR_MALFORMED: 'The frame is not one MessagePack map.',
  ERR_FRAME_TOO_LARGE: 'The frame is larger than the negotiated maximum frame size.',
  ERR_BAD_ENVELOPE: 'An envelope field is missing, of the wrong type, or out of range.',
  ERR_UNSUPPORTED_VERSION: 'No protocol version is shared; the reply names the supported range.',
  ERR_VERSION_MISMATCH: 'The envelope version differs from the version negotiated by HELLO.',
  ERR_UNKNOWN_TYPE: 'The message type is not declared in the negotiated version.',
  ERR_UNSUPPORTED_LAYER: 'The receiving domain does not implement the optional layer of this declared message type (section 6, "Optional layers").',
  ERR_WRONG_DIRECTION: 'The message type may not be sent in this direction, or with this kind.',
  ERR_DUPLICATE_ID: 'A request with this id is already in flight on this connection.',
  // Fields
  ERR_FIELD_MISSING: 'A required field is absent.',
  ERR_FIELD_TYPE: 'A field has the wrong type.',
  ERR_FIELD_RANGE: 'A field is out of its declared range or length.',
  ERR_UNKNOWN_FIELD: 'A field that the declaration does not name is present.',
  // Session
  ERR_NOT_AUTHENTICATED: 'A message other than HELLO arrived before HELLO succeeded.',
  ERR_BAD_TOKEN: 'HELLO named a domain with a token that does not match.',
  ERR_ALREADY_CONNECTED: 'The domain already has a live connection.',
  ERR_SPOOFED_SOURCE: 'A domain set `src` to a domain other than its own.',
  ERR_NOT_PERMITTED: 'The caller may not perform this operation (e.g. a control operation from a guest).',
  // Routing
  ERR_NO_SUCH_DOMAIN: 'The named domain does not exist or is not connected.',
  ERR_PEER_GONE: 'The peer domain died or disconnected before answering.',
  ERR_BACKPRESSURE: 'The destination is not draining its connection; retry later.',
  // Resources and arguments
  ERR_LIMIT: 'A configured limit would be exceeded (table size, ports, domains, memory).',
  ERR_BAD_ARGUMENT: 'A field is well-formed but names something invalid (port, frame, size).',
  ERR_INTERNAL: 'The receiver failed unexpectedly; the connection stays usable.',
  // hyper_dmabuf (SPEC.md sections 10-11)
  ERR_UNKNOWN_BUFFER: 'No buffer with this id: the counter is unknown, or the key does not match.',
  ERR_UNEXPORTED: 'The buffer was unexported (or its exporter died); no new fd may be created for it.',
  ERR_ID_DOMAIN_MISMATCH: 'The domain inside the buffer id is not the domain that sent the message.',
  ERR_NOT_IMPORTER: 'The sender is not the domain the buffer was exported to.',
  ERR_NOT_EXPORTER: 'Only the exporting domain may do this (the buffer id names another domain).',
  ERR_PRIV_TOO_LARGE: 'The private data exceeds the sender\'s or the receiver\'s limit (it is never truncated).',
  ERR_BUFFER_TOO_LARGE: 'The buffer has more pages than the directory format or the receiver\'s limit allows.',
  ERR_BAD_DIRECTORY: 'The gref directory is malformed (bad link, zero or stray reference) or its format is not supported.',
  ERR_MAP_FAILED: 'The importer could not map the directory or data pages; the fd was not created.',
  ERR_NO_COMMON_FORMAT: 'The peers support no common gref directory format.',
  ERR_BUSY: 'The object is in use and cannot be released now (e.g. detaching a still-mapped attachment).',
  ERR_PINNED: 'The buffer is pinned (an importer\'s pin, a local pin, or a mapped attachment that cannot follow a move); a move asked not to wait fails with it.',
  // Cross-VM fences (SPEC.md fence section)
  ERR_FENCE_UNKNOWN_TIMELINE: 'No timeline with this id is shared by the sender with the receiver (never shared, or already unshared).',
  ERR_FENCE_BAD_PAGE: 'The timeline page does not hold a valid header (magic, version or slot count).',
  ERR_FENCE_SETUP_FAILED: 'The observer could not map the timeline page or bind the event channel; nothing was left mapped or bound.',
  // Local (never on the wire; raised by a client library)
  ERR_TIMEOUT: 'Local: no reply arrived within the request timeout.',
  ERR_CLOSED: 'Local: the connection closed while the request was pending.',
} as const;

/** A protocol error code. */
export type ErrorCode = keyof typeof ErrorCodes;

/** An error with a stable code, thrown by the codec and by handlers, and sent as an `err` reply. */
export class ProtocolError extends Error {
  /** Stable code, listed in SPEC.md. */
  readonly code: ErrorCode;
  /** Path of the offending field, if any (e.g. `body.refs[3]`). */
  readonly field: string | undefined;
  /** Extra, declared, reply fields (e.g. the supported version range). */
  readonly extra: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, field?: string, extra?: Record<string, unknown>) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
    this.field = field;
    this.extra = extra;
  }
}

/** True when `code` is a declared error code. */
export function isKnownErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ErrorCodes, code);
}
