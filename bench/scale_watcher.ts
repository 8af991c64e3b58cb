/**
 * A simulated proxy for `deno task bench scale`, cheap enough that ten thousand of them fit on
 * the machine beside the control nodes: one real mTLS connection (`Deno.connectTls` with a mesh
 * certificate), a blocking `GET /v1/catalog` written as raw HTTP/1.1, and each answer's head
 * parsed for its status, `x-skein-index` and `content-length`; the body is read to its end
 * and dropped (a proxy would apply it), except an error's, which is searched for its code.
 * `fetch` with one `HttpClient` per watcher cost the bench more CPU than the nodes it measured.
 * @module
 */

/** Where and as whom a watcher connects. */
export interface WatcherTarget {
  /** Control node address. */
  hostname: string;
  /** Control node API port. */
  port: number;
  /** Trust bundle for the node's certificate (PEM). */
  caPem: string;
  /** The watcher's mesh certificate and key (PEM). */
  certPem: string;
  /** Key of `certPem`. */
  keyPem: string;
}

/** One answer: status, the index it carries, and the error code of a refusal. */
export interface WatchAnswer {
  /** HTTP status. */
  status: number;
  /** `x-skein-index` of the answer (NaN when absent). */
  index: number;
  /** `error.code` of a non-200 answer, when the body names one. */
  code?: string;
  /** performance.now() when the last byte of the answer was read. */
  at: number;
}

/** Bytes one read may fill: a delta answer with its head fits; the first whole catalog takes many reads. */
const READ_BYTES = 4096;
/** Largest response head accepted. */
const MAX_HEAD_BYTES = 16 * 1024;
/** Where the bodies of whole-catalog answers are read to and dropped. */
const _scratch = new Uint8Array(256 * 1024);
const _enc = new TextEncoder();
const _dec = new TextDecoder();

/** A watcher's connection and its reader; answers are read one after the other. */
export class RawWatcher {
  readonly #conn: Deno.TlsConn;
  readonly #host: string;
  /** Bytes read and not yet consumed are `#buf[0, #len)`. */
  #buf = new Uint8Array(READ_BYTES);
  #len = 0;

  private constructor(conn: Deno.TlsConn, host: string) {
    this.#conn = conn;
    this.#host = host;
  }

  /** Connects and completes the TLS handshake. */
  static async connect(t: WatcherTarget): Promise<RawWatcher> {
    const conn = await Deno.connectTls({
      hostname: t.hostname,
      port: t.port,
      caCerts: [t.caPem],
      cert: t.certPem,
      key: t.keyPem,
    });
    await conn.handshake();
    return new RawWatcher(conn, `${t.hostname}:${t.port}`);
  }

  /** Sends `GET path` (asking for deltas when `delta`) and reads the whole answer. */
  async get(path: string, delta: boolean): Promise<WatchAnswer> {
    const head = `GET ${path} HTTP/1.1\r\nhost: ${this.#host}\r\n` +
      (delta ? "skein-catalog-delta: 1\r\n" : "") + "\r\n";
    await this.#writeAll(_enc.encode(head));
    return await this.#read();
  }

  /** Closes the connection. */
  close(): void {
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    for (let at = 0; at < bytes.byteLength;) at += await this.#conn.write(bytes.subarray(at));
  }

  /** Reads more bytes into the buffer after `#len`, growing it up to `need` bytes. */
  async #fill(need = 0): Promise<void> {
    if (this.#len === this.#buf.byteLength || need > this.#buf.byteLength) {
      const grown = new Uint8Array(Math.max(need, this.#buf.byteLength * 2));
      grown.set(this.#buf.subarray(0, this.#len));
      this.#buf = grown;
    }
    const n = await this.#conn.read(this.#buf.subarray(this.#len));
    if (n === null) throw new Error("connection closed by the server");
    this.#len += n;
  }

  /** Drops the first `n` bytes of the buffer. */
  #consume(n: number): void {
    this.#buf.copyWithin(0, n, this.#len);
    this.#len -= n;
  }

  async #read(): Promise<WatchAnswer> {
    let end = _headEnd(this.#buf, this.#len);
    while (end < 0) {
      if (this.#len > MAX_HEAD_BYTES) throw new Error("response head too large");
      await this.#fill();
      end = _headEnd(this.#buf, this.#len);
    }
    const head = _dec.decode(this.#buf.subarray(0, end));
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? NaN);
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1];
    if (length === undefined) throw new Error(`answer without content-length: ${head}`);
    const index = Number(/\r\nx-skein-index:\s*(\d+)/i.exec(head)?.[1] ?? NaN);
    const total = end + 4 + Number(length);
    let code: string | undefined;
    if (status !== 200) {
      // Error bodies are small; keep them to find the code.
      while (this.#len < total) await this.#fill(total);
      const body = _dec.decode(this.#buf.subarray(end + 4, total));
      code = /"code":"([a-z_]+)"/.exec(body)?.[1];
      this.#consume(total);
    } else if (this.#len >= total) {
      this.#consume(total);
    } else {
      // The body is counted, not kept: the first answer is the whole catalog (megabytes). Its
      // bytes go to one scratch buffer all watchers share, which is fine for bytes nobody reads;
      // a watcher has one request out at a time, so nothing past the answer can arrive.
      let left = total - this.#len;
      this.#len = 0;
      while (left > 0) {
        const n = await this.#conn.read(_scratch);
        if (n === null) throw new Error("connection closed by the server");
        if (n > left) throw new Error("the server sent more than the answer asked for");
        left -= n;
      }
    }
    const at = performance.now();
    return { status, index, at, ...(code !== undefined ? { code } : {}) };
  }
}

/** Offset of the `\r\n\r\n` that ends a head, or -1. */
function _headEnd(b: Uint8Array, len: number): number {
  for (let i = 0; i + 3 < len; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}
