/**
 * The one place an error thrown by a route becomes a response: {@linkcode ApiError} and
 * {@linkcode BackendError} answer their own status and code; anything else is logged and
 * answered 500 without internals. Unknown routes answer the SPEC's error body with 404.
 * @module
 */
import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import type { Logger } from "../../common/mod.ts";
import type { ApiEnv } from "./api_env.ts";
import { BackendError } from "./backend.ts";
import { ApiError } from "./errors.ts";

/** The API's `onError` handler, logging unexpected errors to `log`. */
export function apiErrorHandler(log: Logger): ErrorHandler<ApiEnv> {
  return (err, c) => {
    if (err instanceof ApiError) return c.json(err.body(), err.status);
    if (err instanceof BackendError) {
      return c.json({ error: { code: err.code, message: err.message, details: {} } }, err.status);
    }
    log.error("control api request failed", { method: c.req.method, path: c.req.path, err: err });
    return c.json(
      {
        error: {
          code: "internal",
          message: "internal error; see the control node log",
          details: {},
        },
      },
      500,
    );
  };
}

/** The API's `notFound` handler: 404 `not_found` naming the method and path. */
export const apiNotFound: NotFoundHandler<ApiEnv> = (c: Context<ApiEnv>) =>
  c.json({
    error: {
      code: "not_found",
      message: `no route ${c.req.method} ${c.req.path}`,
      details: {},
    },
  }, 404);
