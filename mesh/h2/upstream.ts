/**
 * What a call needs of the stream it sends a try on: the shape of the codec's client stream,
 * which HTTP/1.1 upstreams (`h1_upstream.ts`) imitate, so `call.ts` relays both the same way.
 * @module
 */
import type { Endpoint } from "../forward/mod.ts";
import type { H2Headers } from "./headers.ts";

/** An event listener; arguments depend on the event, as with node streams. */
// deno-lint-ignore no-explicit-any
type _Listener = (...args: any[]) => void;

/** One try's request and response. */
export interface UpstreamStream {
  /** The stream is over (either way). */
  readonly closed: boolean;
  /** Why it closed: 0 cleanly, an HTTP/2 error code otherwise (undefined while open). */
  readonly rstCode: number | undefined;
  /** The response body has been read to its end. */
  readonly readableEnded: boolean;
  /** Writes request body bytes; false asks the writer to wait for 'drain'. */
  write(chunk: Uint8Array): boolean;
  /** Ends the request body. */
  end(): void;
  /**
   * Events: `response` (head, flags), `data` (chunk), `trailers` (block), `end`, `close`,
   * `drain`, `wantTrailers`. There is no `error` event: a failure is a `close` with a reset
   * code.
   */
  on(event: string, fn: _Listener): unknown;
  /** As `on`, once. */
  once(event: string, fn: _Listener): unknown;
  /** Removes a listener. */
  off(event: string, fn: _Listener): unknown;
  /**
   * Sends the request's trailers and ends it; only after `wantTrailers` (which a request made
   * with `waitForTrailers` emits once its body has ended).
   */
  sendTrailers(trailers: H2Headers): void;
  /** Ends the stream now with `code` (an HTTP/2 error code). */
  close(code?: number): void;
  /** Stops reading the response body. */
  pause(): unknown;
  /** Reads the response body again. */
  resume(): unknown;
}

/** Where tries to one endpoint are sent. */
export interface UpstreamSession {
  /** Starts a try with these request headers (pseudo-headers included). */
  request(
    headers: H2Headers,
    opts: { endStream: boolean; waitForTrailers?: boolean },
  ): UpstreamStream;
}

/** The sessions of a set of endpoints. */
export interface Upstreams {
  /** The session to `ep` (rejects when it cannot be reached). */
  get(ep: Endpoint): Promise<UpstreamSession>;
  /**
   * The session {@linkcode Upstreams.get} would resolve to at once, when one is open now; null
   * otherwise (then `get`). Lets the usual call skip a wait on an already settled promise.
   */
  ready?(ep: Endpoint): UpstreamSession | null;
}
