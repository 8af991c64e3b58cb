/**
 * The seam between the byte loop and policy: the forwarder asks a {@linkcode Router} what to
 * do with each request and reports every attempt's outcome back, so balancing, retries,
 * timeouts, circuit breaking and outlier detection plug in without touching I/O code.
 * @module
 */
import type { RequestHead } from "../http1/mod.ts";

/** One upstream address a request can be sent to. */
export interface Endpoint {
  /** Stable identity used for pooling and exclusion (e.g. "10.0.0.5:15443"). */
  key: string;
  /** Host name or IP to connect to. */
  hostname: string;
  /** TCP port to connect to. */
  port: number;
  /**
   * The SPIFFE id the endpoint must present when the hop is mutual TLS (the destination
   * service's identity). Pooled connections are kept apart per identity.
   */
  identity?: string;
  /**
   * Set for a host outside the mesh (an `ExternalService`): the connection is TLS originated
   * to that server, not mesh mTLS (see `mesh/egress/`).
   */
  origin?: OriginTls;
}

/** How the proxy originates TLS to a host outside the mesh. */
export interface OriginTls {
  /** The name sent as SNI and verified against the server's certificate. */
  readonly serverName: string;
  /** PEM certificates the server must chain to; null = the runtime's built-in roots. */
  readonly caPem: string | null;
  /** Why the configured CA file could not be read; set, every connect fails with it. */
  readonly caError?: string;
}

/** What happened to one attempt, as seen by policy code. */
export type Outcome =
  | { kind: "response"; status: number }
  | { kind: "connect_failure"; reason?: string }
  | { kind: "reset" }
  | { kind: "timeout" };

/** What became of one mirror copy. */
export type MirrorOutcome =
  | "sent"
  | "failed"
  | "dropped_concurrency"
  | "dropped_body"
  | "no_endpoint";

/**
 * Where a Route rule's mirror copies go (see `mirror.ts`); made by the router per rule, shared
 * by its requests.
 */
export interface MirrorTarget {
  /** Picks an endpoint for one copy; null when the target has none. */
  pick(): Endpoint | null;
  /** Pre-encoded header lines every copy carries (e.g. `x-skein-destination`). */
  readonly extraHeaders: string;
  /** Takes one of the target's concurrency slots; false = drop the copy. */
  tryAcquire(): boolean;
  /** Gives a slot back. */
  release(): void;
  /** Counts an outcome. */
  count(outcome: MirrorOutcome): void;
}

/** Which local listener a request or connection arrived on. */
export interface ListenerInfo {
  /** Listener name, e.g. the upstream service it fronts ("ledger") or "inbound". */
  name: string;
  /** Protocol spoken on the listener. */
  protocol: "http" | "tcp";
}

/** Hears once how a recorded exchange ended (the record layer's access-log line). */
export interface ExchangeRecord {
  /**
   * The exchange ended with `status` (0: nothing reached the client) after `tries` tries that
   * reported, the last at `ep` ending in `last`; `bytesOut`/`bytesIn` as in `onDone`.
   */
  done(
    status: number,
    bytesOut: number,
    bytesIn: number | undefined,
    tries: number,
    ep: Endpoint | null,
    last: Outcome | null,
  ): void;
}

/** The per-request plan a router returns; called back by the forwarder as attempts run. */
export interface RouteDecision {
  /** The cluster (destination service) chosen; used in errors and telemetry. */
  cluster: string;
  /** The version a route rule narrowed the cluster to, if any; named in errors. */
  subset?: string;
  /** Picks the endpoint for attempt `attempt` (0-based), avoiding keys in `exclude`; null = none. */
  pick(attempt: number, exclude: ReadonlySet<string>): Endpoint | null;
  /** Overall budget until the response head arrives, in ms; 0 = none. */
  timeoutMs: number;
  /** Budget per attempt until the response head arrives, in ms; 0 = none. */
  perTryTimeoutMs: number;
  /**
   * Decides whether attempt `attempt` (0-based) that ended with `outcome` is retried: returns the
   * backoff in ms, or null to stop. Only consulted when a retry is safe (see forwarder docs).
   */
  retry(attempt: number, outcome: Outcome): number | null;
  /** Reports each attempt's outcome and its latency until the response head (or failure). */
  onResult(ep: Endpoint, outcome: Outcome, latencyMs: number): void;
  /**
   * Pre-encoded header lines (`name: value\r\n` each, ASCII) the request-head rewriter adds
   * before the final CRLF of every attempt, e.g. `x-skein-destination: ledger\r\n`.
   */
  extraRequestHeaders?: string;
  /**
   * Called exactly once when the exchange is over: the response body has fully passed to the
   * client, or the exchange failed. `status` is the status of the response head the client got
   * (proxy-generated ones included), 0 when none reached it. Lets breakers and latency metrics
   * cover the whole exchange, not just the wait for the head. For access logs: `bytesOut`
   * counts the (body) bytes relayed to the client, `bytesIn` those relayed from it when known.
   */
  onDone?(status: number, bytesOut?: number, bytesIn?: number): void;
  /**
   * Where a decision that tracks its own tries reports the end of a recorded exchange: null
   * while nothing records it; absent on decisions that cannot carry it, which the record
   * layer wraps instead.
   */
  recording?: ExchangeRecord | null;
  /**
   * On decisions that carry `recording`: adds a pre-encoded header line (a traced request's new
   * `traceparent`) that every try from now on sends after the `extraRequestHeaders` it has.
   */
  addRequestHeader?(line: string): void;
  /** Set when a Route mirrors this request: where its fire-and-forget copy goes. */
  mirror?: MirrorTarget;
  /** Set when a fault injection delays this request: ms to wait before the first try. */
  delayMs?: number;
  /**
   * Set for a request that may become an upgraded connection (a TCP tunnel, a WebSocket) on a
   * listener that authorizes: whether its caller is still allowed. The forwarder asks again for
   * every open upgraded connection when policies change, and closes those answered false.
   */
  stillAllowed?: () => boolean;
}

/** Why the proxy answered a request itself. */
export type ProxyErrorCause =
  | "no_route"
  | "no_endpoint"
  | "no_capable_endpoint"
  | "denied"
  | "egress_denied"
  | "rate_limited"
  | "fault_abort"
  | "overloaded"
  | "bad_request"
  | "upstream_connect_failure"
  | "upstream_reset"
  | "upstream_timeout"
  | "bad_upstream_response"
  | "https_redirect";

/** A decision to answer locally instead of forwarding; the router may return one. */
export class ProxyError extends Error {
  /** HTTP status to answer with. */
  readonly status: number;
  /** Machine-readable cause, sent as `x-skein-error`. */
  readonly code: ProxyErrorCause;
  /** Extra pre-encoded header lines (`name: value\r\n` each, ASCII), e.g. `x-skein-denied`. */
  readonly headers: string | undefined;

  /** Creates a local answer with its status, cause and optional extra header lines. */
  constructor(status: number, code: ProxyErrorCause, message: string, headers?: string) {
    super(message);
    this.name = "ProxyError";
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** Maps a failed attempt to the status and cause the client gets (the one rescue function). */
export function outcomeToProxyError(cluster: string, ep: Endpoint | null, o: Outcome): ProxyError {
  const where = ep === null ? cluster : `${cluster} endpoint ${ep.key}`;
  switch (o.kind) {
    case "connect_failure":
      return new ProxyError(
        502,
        "upstream_connect_failure",
        `could not connect to ${where}${o.reason !== undefined ? `: ${o.reason}` : ""}`,
      );
    case "reset":
      return new ProxyError(502, "upstream_reset", `connection to ${where} was reset`);
    case "timeout":
      return new ProxyError(504, "upstream_timeout", `no response from ${where} in time`);
    case "response":
      return new ProxyError(502, "bad_upstream_response", `bad response from ${where}`);
  }
}

/**
 * The 503 when no endpoint is left for a decision; names the version a route chose, since
 * "no healthy endpoint for ledger" hides that ledger's v2 (the canary) has no instance.
 */
export function noEndpointError(decision: Pick<RouteDecision, "cluster" | "subset">): ProxyError {
  const what = decision.subset === undefined
    ? decision.cluster
    : `${decision.cluster} version ${JSON.stringify(decision.subset)} (chosen by its Route)`;
  return new ProxyError(503, "no_endpoint", `no healthy endpoint for ${what}`);
}

/** The client connection a request arrived on (one object per connection, reused). */
export interface ClientInfo {
  /** Remote IP address, or null when unknown. */
  address: string | null;
  /** Remote port (0 when unknown). */
  port: number;
  /** Free slot for the caller, e.g. a verified peer identity set by a TLS layer. */
  identity: string | null;
}

/** Decides, per request, where it goes. */
export interface Router {
  /** Routes one request head arriving on `listener` from `client`. */
  route(head: RequestHead, listener: ListenerInfo, client: ClientInfo): RouteDecision | ProxyError;
}

/**
 * A client connection that opened with the HTTP/2 preface (prior knowledge), handed over by
 * the HTTP/1 forwarder with the bytes it had read, to be served as HTTP/2 elsewhere.
 */
export interface H2Handoff {
  /** The client connection; the receiver owns it from now on. */
  conn: Deno.Conn;
  /** The bytes already read from it, the preface first. */
  initial: Uint8Array;
  /** The listener it arrived on. */
  listener: ListenerInfo;
  /** The client as the router sees it. */
  client: ClientInfo;
  /** The address appended to `x-forwarded-for`, or null when not appending. */
  clientAddr: string | null;
  /** The inbound's `x-skein-caller` line (null: no verified caller); undefined elsewhere. */
  callerLine: string | null | undefined;
}
