/**
 * One request's exchange: what every layer of the request path (see `request_path.ts`) reads
 * and writes, from the parsed head to the status the client got. A client connection owns one
 * and resets it per request, so a keep-alive connection allocates no per-request state object
 * (the per-try timer is part of it, re-armed per try).
 * @module
 */
import type { ChunkedFramer, HttpParseError, RequestHead } from "../http1/mod.ts";
import type { CoarseTimer } from "./coarse_timers.ts";
import type { ConnectionPool, UpstreamConn } from "./pool.ts";
import type { Endpoint, Outcome, RouteDecision } from "./types.ts";

/** How serving one request ended for the client connection. */
export const enum Done {
  /** The response was relayed and the client connection may serve another request. */
  KeepAlive,
  /** The client connection must be closed. */
  Close,
}

/** Shared empty exclusion set: the first try avoids nothing. */
export const NO_EXCLUSION: ReadonlySet<string> = new Set();

/** The state of one request as it passes the layers; reset per request by {@linkcode begin}. */
export class Exchange implements CoarseTimer {
  /** The upstream pool, to give up a timed-out try's connection. */
  readonly #upstreams: Pick<ConnectionPool, "discard">;
  /** The parsed request head (points into the client buffer). */
  head: RequestHead | null = null;
  /** The route's plan for this request (null until routed, or when the router answered). */
  decision: RouteDecision | null = null;
  /** The request body is whole in the client buffer (none, or buffered): it can be sent again. */
  replayable = false;
  /** The method may be repeated with the same effect (RFC 9110 9.2.2). */
  idempotent = false;
  /** When the exchange started, on the turn clock (ms). */
  started = 0;
  /** The try in progress, 0-based. */
  attempt = 0;
  /** The endpoint of the try in progress (or of the last failed one). */
  ep: Endpoint | null = null;
  /** Endpoints already tried, avoided by the next pick while others are left. */
  exclude: Set<string> | null = null;
  /** This try must open a new connection (the pooled one closed under it). */
  fresh = false;
  /** How the last failed try ended (null: no try failed yet). */
  outcome: Outcome | null = null;
  /** Whether the last failed try may have reached the upstream. */
  sentUpstream = false;
  /** Why the request body could not be sent, when the client's framing was at fault. */
  bodyError: HttpParseError | null = null;
  /** Backoff in ms the policy already chose for the failed try (a retried 5xx); -1 = none yet. */
  backoff = -1;
  /** The client's side ended while its body was being pumped (not the upstream's fault). */
  clientGone = false;
  /** The request body's pump is still sending (see `layer_request_body.ts`). */
  pumping = false;
  /** The client connection closes after the response being relayed. */
  closeClient = false;
  /** The upstream connection goes back to the pool after the response being relayed. */
  reuseUpstream = false;
  /** Bytes the upstream sent beyond the end of the last relayed body. */
  leftover = 0;
  /** Status of the last response head written to the client; 0 = none yet. */
  sentStatus = 0;
  /** Response body bytes relayed to the client (for the access log). */
  bodyOut = 0;
  /** Reused framer of chunked request bodies. */
  framer: ChunkedFramer | null = null;
  /** The per-try timer ({@linkcode CoarseTimer}): when it fires. */
  due = Infinity;
  /** Whether the per-try timer sits in the forwarder's timer set. */
  queued = false;
  /** The check period the per-try timer asks for. */
  step = 0;
  /** The upstream connection of the try the per-try timer guards. */
  tryConn: UpstreamConn | null = null;
  /** Whether the per-try timer fired during the current try. */
  timedOut = false;

  /** Creates the exchange of one client connection. */
  constructor(upstreams: Pick<ConnectionPool, "discard">) {
    this.#upstreams = upstreams;
  }

  /** Starts a new request: a kept-alive connection must not carry the last one's results. */
  begin(head: RequestHead): void {
    this.head = head;
    this.decision = null;
    this.attempt = 0;
    this.ep = null;
    this.exclude = null;
    this.fresh = false;
    this.outcome = null;
    this.sentUpstream = false;
    this.backoff = -1;
    // A reused mux stream too: the last status carried over would turn a refusal into an answer.
    this.sentStatus = this.bodyOut = 0;
  }

  /**
   * Ends the request: drops its objects, so a connection idle until its next request keeps
   * none of them alive (they die young instead of being promoted by the next scavenge).
   */
  end(): void {
    this.head = null;
    this.decision = null;
    this.ep = null;
    this.exclude = null;
    this.outcome = null;
    this.bodyError = null;
  }

  /** The per-try budget ran out: give up on the try's upstream connection. */
  fire(): void {
    this.timedOut = true;
    if (this.tryConn !== null) this.#upstreams.discard(this.tryConn);
  }
}
