/**
 * Traffic the CA process tests send through a proxy pair while certificates change: pooled and
 * fresh-connection GETs that must answer `ledger`, and one raw mTLS request with a given leaf.
 * @module
 */
import type tls from "node:tls";
import { mtlsConnect } from "../../common/tls/mod.ts";

/** One GET through the caller proxy's listener `addr` on a pooled connection; throws unless `200 ledger`. */
export async function pooledGet(addr: string): Promise<void> {
  const r = await fetch(`http://${addr}/`);
  const body = await r.text();
  if (r.status !== 200 || body !== "ledger") throw new Error(`${r.status} ${body.slice(0, 200)}`);
}

/** The same GET on a connection of its own (a client that never reuses one). */
export async function freshGet(addr: string): Promise<void> {
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  try {
    const r = await fetch(`http://${addr}/`, { client });
    const body = await r.text();
    if (r.status !== 200 || body !== "ledger") throw new Error(`${r.status} ${body.slice(0, 200)}`);
  } finally {
    client.close();
  }
}

/**
 * One HTTP/1.1 request over mTLS to `addr` with `pair` as the client certificate; resolves
 * with what came back before the server closed (empty when it cut the connection).
 */
export async function mtlsGet(
  addr: string,
  pair: { certPem: string; keyPem: string },
  caPem: string,
  expect: string,
  o: { path: string; host: string; servername?: string },
): Promise<string> {
  const i = addr.lastIndexOf(":");
  let socket: tls.TLSSocket;
  try {
    socket = await mtlsConnect({
      host: addr.slice(0, i).replace(/^https:\/\//, ""),
      port: Number(addr.slice(i + 1)),
      cert: pair.certPem,
      key: pair.keyPem,
      ca: caPem,
      expectSpiffe: expect,
      ...(o.servername !== undefined ? { servername: o.servername } : {}),
    });
  } catch {
    return "";
  }
  return await new Promise<string>((resolve) => {
    let got = "";
    const timer = setTimeout(() => socket.destroy(), 20_000);
    socket.on("data", (d: Uint8Array) => (got += new TextDecoder().decode(d)));
    socket.on("error", () => {});
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(got);
    });
    socket.write(`GET ${o.path} HTTP/1.1\r\nhost: ${o.host}\r\nconnection: close\r\n\r\n`);
  });
}

/**
 * Steady traffic through a proxy while a test changes certificates: one loop per entry of
 * `loops`, each sending its request kind one after another (with a short pause, so the shared
 * machine's CPU stays free), counting successes and keeping every failure with its time.
 */
export class Traffic {
  /** Successful requests by kind. */
  readonly counts = { mux: 0, fresh: 0 };
  /** Failed requests, `ISO-time kind: error`. */
  readonly failures: string[] = [];
  #on = true;
  readonly #loops: Promise<void>[] = [];

  /** Starts the loops against the address `addr()` names at each request. */
  constructor(
    addr: () => string,
    loops: readonly ["mux" | "fresh", (addr: string) => Promise<void>][],
  ) {
    for (const [kind, fn] of loops) {
      this.#loops.push((async () => {
        while (this.#on) {
          try {
            await fn(addr());
            this.counts[kind]++;
            await new Promise((r) => setTimeout(r, 5));
          } catch (e) {
            this.failures.push(`${new Date().toISOString()} ${kind}: ${e}`);
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      })());
    }
  }

  /** Stops every loop after its request in flight. */
  async stop(): Promise<void> {
    this.#on = false;
    await Promise.all(this.#loops).catch(() => {});
  }
}
