/**
 * The control node's HTTP API (SPEC section 2, documented in `docs/api.md`): a Hono app over a
 * {@linkcode ControlBackend} that the control driver implements.
 * @module
 */
export * from "./app.ts";
export * from "./backend.ts";
export * from "./body.ts";
export * from "./errors.ts";
export * from "./metrics.ts";
export { FakeBackend, type FakeBackendOptions } from "./fake_backend.ts";
export * from "./operator_auth.ts";
