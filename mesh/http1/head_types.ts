/**
 * The shapes of a parsed HTTP/1.x head (request and response), the scanner's resumable state
 * and the parser's limits: what callers of the parser see, without the parsing itself.
 * @module
 */

/** Largest request or response head accepted, start line included. */
export const MAX_HEAD_BYTES = 64 * 1024;
/** Most header fields accepted in one head. */
export const MAX_HEADER_COUNT = 100;
/** Empty lines tolerated before a request line (RFC 9112 section 2.2 robustness). */
export const MAX_LEADING_EMPTY_LINES = 4;

/** Bounds applied while parsing a head. */
export interface HeadLimits {
  /** Largest head in bytes; larger ones fail with 431. @default MAX_HEAD_BYTES */
  maxHeadBytes: number;
  /** Most header fields; more fail with 431. @default MAX_HEADER_COUNT */
  maxHeaderCount: number;
  /** Largest declared Content-Length; larger ones fail with 413. @default Number.MAX_SAFE_INTEGER */
  maxBodyBytes: number;
}

/** The limits used when none are given. */
export const DEFAULT_HEAD_LIMITS: Readonly<HeadLimits> = Object.freeze({
  maxHeadBytes: MAX_HEAD_BYTES,
  maxHeaderCount: MAX_HEADER_COUNT,
  maxBodyBytes: Number.MAX_SAFE_INTEGER,
});

/**
 * Fields shared by request and response heads. Offsets index into `raw`.
 *
 * Parsed heads decode `names`, `values`, `reason` and {@linkcode headerValue} results from
 * `raw` when first read, so read them before the buffer is reused, like `raw` itself.
 */
export interface HttpHead {
  /** The buffer the head was parsed from; only valid until the caller reuses it. */
  raw: Uint8Array;
  /** Offset of the start line in `raw`. */
  start: number;
  /** Offset just past the blank line that ends the head. */
  end: number;
  /** Offset just past the start line's CRLF. */
  firstLineEnd: number;
  /** Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1. */
  versionMinor: number;
  /** Lower-cased field names, in order. */
  names: string[];
  /** Field values with surrounding whitespace removed, parallel to `names`. */
  values: string[];
  /** Offset of each field line in `raw`. */
  lineStarts: number[];
  /** Offset just past each field line's CRLF. */
  lineEnds: number[];
  /** Whether each field is hop-by-hop and must not be forwarded as is. */
  hop: boolean[];
  /** Whether any field is hop-by-hop (lets a proxy forward the head verbatim when false). */
  hasHopByHop: boolean;
  /** Declared Content-Length, or -1 when absent. */
  contentLength: number;
  /** Whether the body uses chunked transfer coding (as its final coding). */
  chunked: boolean;
  /** Whether Transfer-Encoding is present but its final coding is not chunked (responses only). */
  otherTransferCoding: boolean;
  /** Whether the sender allows the connection to stay open after this message. */
  keepAlive: boolean;
  /** Whether `Connection` lists `upgrade` and an `Upgrade` field is present. */
  upgrade: boolean;
  /** Any byte at or above 0x80 appears in a field value. */
  hasObsText: boolean;
  /**
   * Content-Length was sent as a list (`5, 5`) or more than once: the forwarded head must carry
   * it once, as {@linkcode dropRewrittenFields} and the writers in `rewrite.ts` do.
   */
  contentLengthListed?: boolean;
  /** A field a proxy must drop or merge is present (see {@linkcode dropRewrittenFields}). */
  forwardingFields?: boolean;
}

/** A parsed request head. */
export interface RequestHead extends HttpHead {
  /** The method token, case preserved. */
  method: string;
  /** The request-target as sent. */
  target: string;
  /**
   * Set when a proxy replaced `target` (e.g. with the normalized path it authorized), so the
   * forwarded start line is rebuilt from `target` instead of copied from `raw`.
   */
  targetRewritten?: boolean;
  /** The Host field value, or null (only possible for HTTP/1.0). */
  host: string | null;
  /** Whether the client sent `Expect: 100-continue`. */
  expectContinue: boolean;
  /**
   * Whether an `x-skein-capability` field is present (set by the parser, so a router looks
   * the value up only then; heads built otherwise leave it unset).
   */
  asksCapability?: boolean;
  /**
   * Whether a field the record layer reads (`traceparent`, `b3`, `x-b3-traceid`,
   * `x-request-id`) is present: set by the parser, so tracing and access logs look them up
   * only then; heads built otherwise leave it unset and are searched.
   */
  recordedFields?: boolean;
}

/** A parsed response head. */
export interface ResponseHead extends HttpHead {
  /** Status code, 100..999. */
  status: number;
  /** Reason phrase (may be empty). */
  reason: string;
}

/** Resumable scanner state for {@linkcode findHeadEnd}. */
export interface HeadScan {
  /** Where the head starts (moves past leading empty lines). */
  start: number;
  /** Where the current line starts. */
  lineStart: number;
  /** Where scanning resumes. */
  pos: number;
  /** Leading empty lines skipped so far. */
  skipped: number;
}
