/**
 * Request bodies: read with a byte limit enforced while streaming, then parse JSON.
 * @module
 */
import { ApiError } from "./errors.ts";
import { concatBytes } from "../../common/bytes.ts";

/** Largest request body accepted. */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Reads a request body, failing with 413 as soon as more than `limit` bytes arrive (or when
 * Content-Length already says so), without buffering the excess.
 */
export async function readBodyBytes(
  req: Request,
  limit: number = MAX_BODY_BYTES,
): Promise<Uint8Array<ArrayBuffer>> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) {
    throw _tooLarge(limit, Number(declared));
  }
  if (!req.body) return new Uint8Array(0);
  // With a declared length within the limit the server delivers at most that many bytes, so
  // the body can be taken in one piece; streaming chunk by chunk cost more than the parse.
  if (declared !== null && /^\d+$/.test(declared)) {
    const whole = new Uint8Array(await req.arrayBuffer());
    // Only a hand-built Request can carry more than it declares; refused all the same.
    if (whole.byteLength > limit) throw _tooLarge(limit, whole.byteLength);
    return whole;
  }
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw _tooLarge(limit, total);
    }
    chunks.push(value);
  }
  return concatBytes(chunks, total);
}

function _tooLarge(limit: number, got: number): ApiError {
  return new ApiError(413, "body_too_large", `request body over the limit of ${limit} bytes`, {
    limit_bytes: limit,
    received_bytes_at_least: got,
  });
}

/** Strict UTF-8: one decoder for every body (it keeps no state between whole-buffer calls). */
const _utf8 = new TextDecoder("utf-8", { fatal: true });

/** Parses a body as UTF-8 JSON; 400 `invalid_json` otherwise. */
export function parseJsonBody(bytes: Uint8Array): unknown {
  if (bytes.byteLength === 0) {
    throw new ApiError(400, "invalid_json", "request body is empty; expected JSON");
  }
  let text: string;
  try {
    text = _utf8.decode(bytes);
  } catch {
    throw new ApiError(400, "invalid_json", "request body is not valid UTF-8");
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(
      400,
      "invalid_json",
      `request body is not valid JSON: ${(e as Error).message}`,
    );
  }
}
