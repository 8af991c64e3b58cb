/**
 * The API's error type and the SPEC's error body `{"error": {"code", "message", "details"}}`.
 * @module
 */
import type { z } from "zod";

/** HTTP status codes the API produces for errors. */
export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 429 | 500 | 502 | 503;

/** The JSON error body of every failed request. */
export interface ErrorBody {
  /** The error itself. */
  error: {
    /** Stable, machine-readable code such as `invalid_request` or `no_quorum`. */
    code: string;
    /** Human-readable explanation naming the values involved. */
    message: string;
    /** Structured extra information, e.g. zod issues with field paths. */
    details: Record<string, unknown>;
  };
}

/** An error that knows its HTTP response. */
export class ApiError extends Error {
  /** Creates the error. */
  constructor(
    readonly status: ErrorStatus,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** The JSON body for this error. */
  body(): ErrorBody {
    return { error: { code: this.code, message: this.message, details: this.details } };
  }
}

/** One validation problem with its field path, e.g. `items[2].port`. */
export interface FieldIssue {
  /** Field path in JS notation; empty for the whole value. */
  path: string;
  /** What was expected. */
  message: string;
}

/** Formats a zod path as `a.b[2].c`. */
export function formatFieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out === "" ? String(p) : `.${String(p)}`;
  }
  return out;
}

/** Most issues reported in one 400 response. */
export const MAX_REPORTED_ISSUES = 20;

/** Turns zod issues into a 400 `invalid_request` naming the first field path. */
export function validationError(
  where: string,
  issues: readonly z.core.$ZodIssue[],
  prefix: readonly PropertyKey[] = [],
): ApiError {
  const list: FieldIssue[] = issues.slice(0, MAX_REPORTED_ISSUES).map((i) => {
    let message = i.message;
    if (i.code === "unrecognized_keys") message = `unknown field(s): ${i.keys.join(", ")}`;
    return { path: formatFieldPath([...prefix, ...i.path]), message };
  });
  const first = list[0];
  const at = first?.path ? `${where}.${first.path}` : where;
  return new ApiError(400, "invalid_request", `${at}: ${first?.message ?? "invalid"}`, {
    issues: list,
  });
}
