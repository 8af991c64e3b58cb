/**
 * The HTTP/2 side of a data plane, loaded on first use: the h2 codec and call code (and
 * `node:http` for HTTP/1.1 apps) cost every isolate memory, so a proxy that only ever sees
 * HTTP/1 never loads them. The first connection with the h2 preface imports it; connections
 * handed over meanwhile wait for it.
 * @module
 */
import type { H2Handoff } from "../forward/mod.ts";
import type { H2Gateway, H2GatewayOptions, H2GatewayStats, H2Route } from "./gateway.ts";

/** An {@linkcode H2Gateway} made when the first h2 connection arrives. */
export class LazyH2 {
  readonly #o: H2GatewayOptions;
  #gw: Promise<H2Gateway> | null = null;
  #loaded: H2Gateway | null = null;
  #drained = false;

  /** Keeps the options; imports nothing yet. */
  constructor(o: H2GatewayOptions) {
    this.#o = o;
  }

  /** Whether the h2 code has been loaded (tests, and the footprint note). */
  get loaded(): boolean {
    return this.#gw !== null;
  }

  /** The handoff a forwarder calls for `route`'s listener. */
  handoff(route: H2Route): (h: H2Handoff) => void {
    return (h) => this.accept(h, route);
  }

  /** Serves `h` once the h2 code is loaded; closes it when loading fails or after a drain. */
  accept(h: H2Handoff, route: H2Route): void {
    if (this.#drained) {
      h.conn.close();
      return;
    }
    this.#gw ??= import("./gateway.ts").then((m) => this.#loaded = new m.H2Gateway(this.#o));
    this.#gw.then((g) => g.accept(h, route), (e) => {
      this.#o.logger.error("could not load the HTTP/2 code", { err: e as Error });
      try {
        h.conn.close();
      } catch {
        // Already closed.
      }
    });
  }

  /** What the gateway served (nothing before it is loaded). */
  stats(): H2GatewayStats {
    return this.#loaded?.stats() ?? { requests: 0, connections: {} };
  }

  /** Drains the gateway if it was ever loaded. */
  async drain(ms: number): Promise<void> {
    this.#drained = true;
    if (this.#gw !== null) await (await this.#gw).drain(ms);
  }
}
