/**
 * Where the inbound's HTTP/1.1 calls to an app declared `protocol: http2` or `grpc` go: one
 * loopback listener per such app, whose connections `mesh/h2/h1_bridge.ts` (loaded with the
 * first of them) sends on to the app as h2c. The router sees these apps at their bridge's
 * port; HTTP/2 calls and TCP tunnels still go to the app itself.
 * @module
 */
import type { Logger } from "../../common/log.ts";
import { closeQuietly } from "../forward/mod.ts";
import type { H1ToH2Bridge } from "../h2/h1_bridge.ts";
import type { LocalApp } from "./router.ts";
import { plainH2Dial } from "./h2_dial.ts";

/** A local app as proxy.yaml declares it. */
export interface DeclaredApp extends LocalApp {
  /** How the app speaks (`http`, `http2`, `grpc`). @default "http" */
  protocol?: string;
}

/** Whether an app declared with `protocol` speaks only HTTP/2. */
export function speaksH2(protocol: string | undefined): boolean {
  return protocol === "http2" || protocol === "grpc";
}

/** The loopback bridges of one data plane. */
export class H2AppBridges {
  readonly #o: { idleMs: number; maxSessionAgeMs: number; logger: Logger };
  /** By app port. */
  readonly #byApp = new Map<number, Deno.Listener>();
  /** App port by bridge port. */
  readonly #appOf = new Map<number, number>();
  #bridge: Promise<H1ToH2Bridge> | null = null;

  /** Creates no listener yet. */
  constructor(o: { idleMs: number; maxSessionAgeMs: number; logger: Logger }) {
    this.#o = o;
  }

  /**
   * The apps as the router should reach them over HTTP/1.1: an HTTP/2 app at its bridge's
   * port (bound now if new); bridges no app needs any more are closed.
   */
  routed(apps: readonly DeclaredApp[]): LocalApp[] {
    const needed = new Set(apps.filter((a) => speaksH2(a.protocol)).map((a) => a.port));
    for (const [port, l] of this.#byApp) {
      if (needed.has(port)) continue;
      this.#appOf.delete((l.addr as Deno.NetAddr).port);
      this.#byApp.delete(port);
      l.close();
    }
    return apps.map((a) => {
      if (!speaksH2(a.protocol)) return { name: a.name, port: a.port };
      let l = this.#byApp.get(a.port);
      if (l === undefined) {
        l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        this.#byApp.set(a.port, l);
        this.#appOf.set((l.addr as Deno.NetAddr).port, a.port);
        void this.#accept(l, a.port);
      }
      return { name: a.name, port: (l.addr as Deno.NetAddr).port };
    });
  }

  /** The app behind a bridge port (the port itself when it is no bridge's). */
  appPortOf(port: number): number {
    return this.#appOf.get(port) ?? port;
  }

  async #accept(l: Deno.Listener, appPort: number): Promise<void> {
    try {
      for await (const conn of l) {
        this.#bridge ??= import("../h2/h1_bridge.ts").then((m) =>
          new m.H1ToH2Bridge({
            dial: plainH2Dial,
            idleMs: this.#o.idleMs,
            maxSessionAgeMs: this.#o.maxSessionAgeMs,
          })
        );
        this.#bridge.then((b) => b.serve(conn, appPort), (e) => {
          this.#o.logger.error("could not load the HTTP/2 code", { err: e as Error });
          closeQuietly(conn);
        });
      }
    } catch {
      // Closed.
    }
  }

  /** Closes every bridge and the app sessions behind them. */
  close(): void {
    for (const l of this.#byApp.values()) {
      try {
        l.close();
      } catch {
        // Already closed.
      }
    }
    this.#byApp.clear();
    this.#appOf.clear();
    void this.#bridge?.then((b) => b.close(), () => {});
  }
}
