/**
 * The proxy's HTTPS client for the control API: trusts the mesh CA bundle only, presents the
 * proxy's certificate once it has one, and accepts only a server whose certificate carries a
 * control SPIFFE id (`spiffe://<td>/control/<node>`).
 *
 * It runs on `node:https` rather than `fetch` because a `Deno.HttpClient` trusts its `caCerts`
 * in addition to the public web roots and cannot check the server's SPIFFE id: with `fetch`, a
 * publicly trusted certificate for a control node's name would pass. Public CAs do not issue
 * SPIFFE URIs, and the mesh CA gives control ids only to control nodes.
 * @module
 */
import https from "node:https";
import type { IncomingMessage } from "node:http";
import type { PeerCertificate } from "node:tls";
import type { TlsMaterial } from "./mod.ts";
import { spiffeIdFromSans, splitPemCerts, TLS_MIN_VERSION } from "./mod.ts";

/** How long a replaced client stays open for calls still running on it (blocking queries). */
export const OLD_CLIENT_GRACE_MS = 120_000;

/** Largest CA file read, in bytes. */
export const MAX_CA_FILE_BYTES = 256 * 1024;

/** Thrown when the CA file cannot be used. */
export class ControlTrustError extends Error {
  override readonly name = "ControlTrustError";
}

/** Reads a PEM bundle of CA certificates; null when the file does not exist. */
export async function readCaBundle(path: string): Promise<string[] | null> {
  let text: string;
  try {
    const st = await Deno.stat(path);
    if (st.size > MAX_CA_FILE_BYTES) {
      throw new ControlTrustError(`CA file ${path} is ${st.size} bytes, over ${MAX_CA_FILE_BYTES}`);
    }
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  const certs = splitPemCerts(text);
  if (certs.length === 0) {
    throw new ControlTrustError(`CA file ${path} holds no PEM certificate`);
  }
  return certs;
}

/** Refuses a server certificate without a control SPIFFE id (see the module doc). */
export function checkControlServer(_host: string, cert: PeerCertificate): Error | undefined {
  const id = spiffeIdFromSans(cert.subjectaltname);
  if (id?.kind === "control") return undefined;
  return new Error(
    `control API server is ${id?.uri ?? "not a mesh identity"}, expected a control node`,
  );
}

/** Answers without a body, whatever the server sent (the Response constructor insists). */
const _NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

/** A `fetch` for the control API whose trust and client certificate can change at runtime. */
export class ControlHttp {
  #agent: https.Agent | null;
  #roots: string[];
  #material: TlsMaterial | null;
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();

  /** Creates the client; `roots` empty means plain `fetch` (for tests with http:// fakes). */
  constructor(roots: readonly string[], material: TlsMaterial | null = null) {
    this.#roots = [...roots];
    this.#material = material;
    this.#agent = this.#build();
  }

  /** The fetch to hand to discovery and enrolment. */
  readonly fetch: typeof fetch = (input, init) => {
    const agent = this.#agent;
    const req = new Request(input, init);
    if (!agent || !req.url.startsWith("https:")) return fetch(req);
    return _request(agent, req);
  };

  /** Presents `material`'s certificate from now on (after enrolment or renewal). */
  setMaterial(material: TlsMaterial): void {
    this.#material = material;
    this.#replace();
  }

  /** Trusts exactly `roots` from now on (CA rotation); ignored when empty. True if changed. */
  setRoots(roots: readonly string[]): boolean {
    if (roots.length === 0) return false;
    if (roots.length === this.#roots.length && roots.every((r, i) => r === this.#roots[i])) {
      return false;
    }
    this.#roots = [...roots];
    this.#replace();
    return true;
  }

  /** Closes every connection. */
  close(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#agent?.destroy();
    this.#agent = null;
  }

  #build(): https.Agent | null {
    if (this.#roots.length === 0) return null;
    const m = this.#material;
    return new https.Agent({
      keepAlive: true,
      ca: this.#roots,
      minVersion: TLS_MIN_VERSION,
      checkServerIdentity: checkControlServer,
      ...(m ? { cert: m.certPem, key: m.keyPem } : {}),
    });
  }

  #replace(): void {
    const old = this.#agent;
    this.#agent = this.#build();
    if (!old) return;
    // A blocking catalog query may still be running on the old agent; let it finish.
    const t = setTimeout(() => {
      this.#timers.delete(t);
      old.destroy();
    }, OLD_CLIENT_GRACE_MS);
    Deno.unrefTimer(t as unknown as number);
    this.#timers.add(t);
  }
}

/** One request over `agent`, as a Web Response whose body streams; `req.signal` aborts it. */
async function _request(agent: https.Agent, req: Request): Promise<Response> {
  const url = new URL(req.url);
  const body = req.body ? new Uint8Array(await req.arrayBuffer()) : undefined;
  const signal = req.signal;
  signal.throwIfAborted();
  return await new Promise<Response>((resolve, reject) => {
    const out = https.request({
      agent,
      host: url.hostname.replace(/^\[|\]$/g, ""),
      port: url.port || 443,
      path: url.pathname + url.search,
      method: req.method,
      headers: {
        ...Object.fromEntries(req.headers),
        ...(body ? { "content-length": String(body.length) } : {}),
      },
    }, (res: IncomingMessage) => {
      const headers = new Headers();
      for (const [k, v] of Object.entries(res.headers)) {
        if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(", ") : String(v));
      }
      const status = res.statusCode ?? 502;
      if (_NULL_BODY_STATUS.has(status)) {
        res.resume();
        resolve(new Response(null, { status, headers }));
        return;
      }
      resolve(new Response(_bodyStream(res), { status, headers }));
    });
    const onAbort = () => {
      const why = signal.reason ?? new DOMException("aborted", "AbortError");
      out.destroy(why instanceof Error ? why : new Error(String(why)));
      reject(why);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    out.on("close", () => signal.removeEventListener("abort", onAbort));
    out.on("error", reject);
    out.end(body);
  });
}

/**
 * The body of `res` as a Web stream that pulls (so an unread answer stays in the socket, not in
 * memory) and never touches its controller after a cancel, an end or an error: `res.destroy()`
 * does not stop data already buffered from being emitted, and an enqueue on a closed stream
 * throws where nothing can catch it.
 */
function _bodyStream(res: IncomingMessage): ReadableStream<Uint8Array> {
  let done = false;
  const finish = () => {
    done = true;
    res.removeAllListeners("data");
    res.on("data", () => {});
  };
  return new ReadableStream<Uint8Array>({
    start(c) {
      res.on("data", (d: Uint8Array) => {
        if (done) return;
        try {
          c.enqueue(new Uint8Array(d));
        } catch {
          finish();
          res.destroy();
          return;
        }
        if ((c.desiredSize ?? 0) <= 0) res.pause();
      });
      res.on("end", () => {
        if (done) return;
        finish();
        try {
          c.close();
        } catch {
          // Already closed by a cancel.
        }
      });
      res.on("error", (e: Error) => {
        if (done) return;
        finish();
        try {
          c.error(e);
        } catch {
          // Already closed by a cancel.
        }
      });
      // A connection that closes before the end of the body: a truncated answer.
      res.on("close", () => {
        if (done) return;
        finish();
        try {
          c.error(new Error("control API answer was cut short"));
        } catch {
          // Already closed by a cancel.
        }
      });
    },
    pull() {
      if (!done) res.resume();
    },
    cancel() {
      finish();
      res.destroy();
    },
  }, { highWaterMark: 16 });
}
