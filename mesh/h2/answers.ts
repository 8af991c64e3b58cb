/**
 * The answers an h2 call's proxy makes itself (no I/O beyond the stream it answers on): a
 * local error as a plain-text response or, for gRPC, as a trailers-only answer with
 * `grpc-status` and `grpc-message`; and the trailers that end a relayed gRPC call the proxy cut
 * short.
 * @module
 */
import type { ProxyError } from "../forward/mod.ts";
import { encodeGrpcMessage, grpcStatusOfError } from "./grpc.ts";
import { type H2Headers, headersOfLines } from "./headers.ts";
import { ErrorCode } from "./wire/frames.ts";
import type { H2Stream } from "./wire/stream.ts";

/** Trailers that end a gRPC call with `code`, naming the proxy's cause. */
export function grpcTrailers(code: number, message: string, cause: string): H2Headers {
  return {
    "grpc-status": String(code),
    "grpc-message": encodeGrpcMessage(message),
    "x-skein-error": cause,
  };
}

/**
 * Answers a request locally: for gRPC a trailers-only response (HTTP 200, `grpc-status`,
 * `grpc-message`), else the status with the message as a plain-text body. Returns the gRPC
 * status sent (for gRPC) or -1.
 */
export function answerLocally(
  s: H2Stream,
  node: string,
  grpc: boolean,
  e: ProxyError,
): number {
  if (s.closed || s.destroyed || s.headersSent) return -1;
  const extra = headersOfLines(e.headers);
  try {
    if (grpc) {
      const code = grpcStatusOfError(e);
      s.respond({
        ...extra,
        ":status": 200,
        "content-type": "application/grpc",
        "grpc-status": String(code),
        "grpc-message": encodeGrpcMessage(e.message),
        "x-skein-error": e.code,
        "x-skein-proxy": node,
      }, { endStream: true });
      return code;
    }
    s.respond({
      ...extra,
      ":status": e.status,
      "content-type": "text/plain; charset=utf-8",
      "x-skein-error": e.code,
      "x-skein-proxy": node,
    });
    s.end(`${e.message}\n`);
  } catch {
    s.close(ErrorCode.INTERNAL_ERROR);
  }
  return -1;
}
