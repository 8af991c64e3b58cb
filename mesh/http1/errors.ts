/** Why a message was rejected; stable strings that tests and logs can match on. */
export type HttpParseErrorCode =
  | "bad_request_line"
  | "bad_status_line"
  | "bad_version"
  | "bad_header_name"
  | "bad_header_value"
  | "obs_fold"
  | "bare_lf"
  | "bare_cr"
  | "head_too_large"
  | "too_many_headers"
  | "missing_host"
  | "duplicate_host"
  | "bad_content_length"
  | "conflicting_content_length"
  | "content_length_and_transfer_encoding"
  | "chunked_not_final"
  | "unsupported_transfer_encoding"
  | "bad_chunk_size"
  | "bad_chunk_framing"
  | "chunk_extension_too_long"
  | "trailers_too_large"
  | "body_too_large"
  | "unsolicited_upgrade";

/** A malformed or over-limit HTTP/1.x message; `status` is what a server should answer. */
export class HttpParseError extends Error {
  /** The response status to send back (400, 413, 431, 501, 505). */
  readonly status: number;
  /** Machine-readable cause. */
  readonly code: HttpParseErrorCode;

  /** Creates a parse error with the status a server should answer. */
  constructor(code: HttpParseErrorCode, status: number, detail: string) {
    super(`${code}: ${detail}`);
    this.name = "HttpParseError";
    this.code = code;
    this.status = status;
  }
}
