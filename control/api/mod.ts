/**
 * The control node's HTTP API (SPEC section 2, documented in `docs/api.md`): a Hono app over a
 * {@linkcode ControlBackend} that the control driver implements, served over HTTPS by
 * {@linkcode serveApiHttps} (`handler: (req, info) => app.fetch(req, info)`), which hands the
 * verified client certificate identity to the app; followers forward with
 * {@linkcode createMtlsFetch}.
 * @module
 */
export * from "./app.ts";
export * from "./backend.ts";
export * from "./body.ts";
export * from "./errors.ts";
export * from "./metrics.ts";
export * from "./operator_auth.ts";
export * from "./https_server.ts";
export * from "./forward_client.ts";
