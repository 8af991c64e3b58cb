/** Shared helpers for the data-plane tests: raw HTTP/1.1 clients and fake upstreams. */
import { nullLogger } from "../../common/log.ts";
import {
  ChunkedFramer,
  responseBodyKind,
  type ResponseHead,
  responseHeadParser,
} from "../../mesh/http1/mod.ts";
import { type Endpoint, type ForwarderOptions, HttpForwarder } from "../../mesh/forward/mod.ts";
import { staticRouter, type StaticRouterOptions } from "./static_router.ts";

export const enc = new TextEncoder();
export const dec = new TextDecoder();

/** An endpoint for 127.0.0.1:port. */
export function local(port: number): Endpoint {
  return { key: `127.0.0.1:${port}`, hostname: "127.0.0.1", port };
}

/** Starts an in-process forwarder on 127.0.0.1:0 routing to fixed endpoints. */
export function forwarder(
  route: StaticRouterOptions,
  extra: Partial<ForwarderOptions> = {},
): HttpForwarder {
  return HttpForwarder.listen("127.0.0.1", 0, {
    node: extra.node ?? "test-node",
    listener: { name: "test", protocol: "http" },
    router: staticRouter(route),
    logger: nullLogger,
    ...extra,
  });
}

/** A response read by {@linkcode RawClient}. */
export interface RawResponse {
  head: ResponseHead;
  status: number;
  header(name: string): string | null;
  body: Uint8Array;
  text: string;
}

/** A hand-driven HTTP/1.1 client on one connection, to control exact bytes and reuse. */
export class RawClient {
  readonly conn: Deno.Conn;
  #pending: Uint8Array = new Uint8Array(0);

  private constructor(conn: Deno.Conn) {
    this.conn = conn;
  }

  /** Connects to 127.0.0.1:port. */
  static async connect(port: number): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Sends bytes or a string (as latin1). */
  async send(data: string | Uint8Array): Promise<void> {
    const b = typeof data === "string" ? Uint8Array.from(data, (c) => c.charCodeAt(0)) : data;
    let off = 0;
    while (off < b.length) off += await this.conn.write(b.subarray(off));
  }

  async #more(): Promise<boolean> {
    const buf = new Uint8Array(64 * 1024);
    const n = await this.conn.read(buf);
    if (n === null) return false;
    const next = new Uint8Array(this.#pending.length + n);
    next.set(this.#pending);
    next.set(buf.subarray(0, n), this.#pending.length);
    this.#pending = next;
    return true;
  }

  /** Reads one response (including 1xx heads); null when the connection closed first. */
  async read(method = "GET"): Promise<RawResponse | null> {
    let parsed: { head: ResponseHead; rest: Uint8Array } | null = null;
    while (true) {
      const p = responseHeadParser();
      parsed = this.#pending.length > 0 ? p.push(this.#pending) : null;
      if (parsed !== null) break;
      if (!(await this.#more())) return null;
    }
    const head = parsed.head;
    this.#pending = parsed.rest;
    const kind = head.status < 200 ? "none" : responseBodyKind(method, head);
    let bodyEnd = 0;
    if (kind === "length") {
      while (this.#pending.length < head.contentLength) {
        if (!(await this.#more())) return null;
      }
      bodyEnd = head.contentLength;
    } else if (kind === "chunked") {
      const fr = new ChunkedFramer();
      let seen = 0;
      while (true) {
        seen = fr.feed(this.#pending, seen, this.#pending.length);
        if (fr.done) break;
        if (!(await this.#more())) return null;
      }
      bodyEnd = seen;
    } else if (kind === "close") {
      while (await this.#more()) { /* read to EOF */ }
      bodyEnd = this.#pending.length;
    }
    const raw = this.#pending.slice(0, bodyEnd);
    const body = kind === "chunked" ? dechunk(raw) : raw;
    this.#pending = this.#pending.slice(bodyEnd);
    return {
      head,
      status: head.status,
      header: (n) => {
        const i = head.names.indexOf(n);
        return i === -1 ? null : head.values[i]!;
      },
      body,
      text: dec.decode(body),
    };
  }

  /** Whether the peer closed the connection (reads until EOF or error). */
  async closedByPeer(): Promise<boolean> {
    try {
      while (await this.#more()) { /* drain */ }
      return true;
    } catch {
      return true;
    }
  }

  /** Closes the connection. */
  close(): void {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

/** Decodes a complete, already validated chunked body (test helper; ignores extensions). */
export function dechunk(raw: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  let p = 0;
  while (true) {
    const lf = raw.indexOf(10, p);
    const size = parseInt(dec.decode(raw.subarray(p, lf - 1)).split(";")[0]!, 16);
    if (size === 0) break;
    parts.push(raw.subarray(lf + 1, lf + 1 + size));
    p = lf + 1 + size + 2;
  }
  const out = new Uint8Array(parts.reduce((n, x) => n + x.length, 0));
  let o = 0;
  for (const x of parts) {
    out.set(x, o);
    o += x.length;
  }
  return out;
}

/**
 * A scripted raw TCP upstream: for each connection, reads until a request head arrived, then
 * runs `behave` with the connection. Returns its port and a close function.
 */
export function rawUpstream(
  behave: (conn: Deno.Conn, request: string) => Promise<void>,
): { port: number; close: () => Promise<void>; connections: () => number } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  let count = 0;
  const loop = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      count++;
      (async () => {
        let text = "";
        const buf = new Uint8Array(16 * 1024);
        try {
          while (!text.includes("\r\n\r\n")) {
            const n = await conn.read(buf);
            if (n === null) return;
            text += dec.decode(buf.subarray(0, n));
          }
          await behave(conn, text);
        } catch {
          // The proxy may close first; that is part of what is tested.
        } finally {
          conns.delete(conn);
          try {
            conn.close();
          } catch {
            // already closed
          }
        }
      })();
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    connections: () => count,
    close: async () => {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // already closed
        }
      }
      await loop.catch(() => {});
    },
  };
}

/** Resident set size of a process in bytes, from /proc. */
export async function rssBytes(pid: number, field: "VmRSS" | "VmHWM" = "VmRSS"): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const m = status.match(new RegExp(`${field}:\\s+(\\d+) kB`));
  if (!m) throw new Error(`no ${field} for ${pid}`);
  return Number(m[1]) * 1024;
}
