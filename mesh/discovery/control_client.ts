/**
 * A small HTTP client for the control API that fails over between the `control:` URLs.
 *
 * It sticks to the URL that answered last; a network error, a timeout or a 5xx (no leader,
 * no quorum) moves it to the next URL. After every URL failed once in a row, the caller gets
 * a {@linkcode ControlUnavailableError} and decides how long to back off (see
 * {@linkcode Backoff}), so the loops above stay bounded and visible.
 * @module
 */

/** Default bound on one control API call that is not a blocking query, in ms. */
export const DEFAULT_CONTROL_REQUEST_TIMEOUT_MS = 5_000;
/** Largest control API answer read, in bytes. */
export const MAX_CONTROL_RESPONSE_BYTES = 32 * 1024 * 1024;

/** No control URL answered usefully. */
export class ControlUnavailableError extends Error {
  override readonly name = "ControlUnavailableError";
  /** Creates the error listing what each URL did. */
  constructor(readonly failures: readonly string[]) {
    super(`no control node answered: ${failures.join("; ")}`);
  }
}

/** A control API answer below 500. */
export interface ControlResponse {
  /** HTTP status. */
  status: number;
  /** Parsed JSON body (null when empty or not JSON). */
  body: unknown;
  /** Response headers. */
  headers: Headers;
  /** The control URL that answered. */
  url: string;
}

/** Options of {@linkcode ControlClient}. */
export interface ControlClientOptions {
  /** Base URLs of the control nodes, e.g. `http://10.0.0.1:7400`. */
  urls: readonly string[];
  /** Sent as `Authorization: Bearer`, if set. */
  token?: string;
  /** Injectable for tests. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Default per-call timeout. @default DEFAULT_CONTROL_REQUEST_TIMEOUT_MS */
  timeoutMs?: number;
  /** Largest answer read. @default MAX_CONTROL_RESPONSE_BYTES */
  maxResponseBytes?: number;
  /** Index of the URL tried first, so a fleet's watches spread over the nodes. @default 0 */
  startAt?: number;
  /**
   * Before trying the next URL after one failed, wait a random time up to this, so a node's
   * watchers do not all land on the next node at once when it dies. @default 0
   */
  failoverJitterMs?: number;
  /** Uniform random in [0, 1) for the failover jitter. @default Math.random */
  random?: () => number;
}

/** Options of one {@linkcode ControlClient.request}. */
export interface RequestOptions {
  /** JSON body. */
  body?: unknown;
  /** Bound for this call. @default the client's timeoutMs */
  timeoutMs?: number;
  /** Aborts the call (and the failover loop). */
  signal?: AbortSignal;
  /** Extra request headers. */
  headers?: Record<string, string>;
}

/** Calls the control API with failover across URLs. */
export class ControlClient {
  readonly #urls: string[];
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;
  readonly #token: string | undefined;
  readonly #maxBytes: number;
  readonly #jitterMs: number;
  readonly #random: () => number;
  #current = 0;

  /** Creates a client; `urls` must not be empty. */
  constructor(opts: ControlClientOptions) {
    if (opts.urls.length === 0) throw new TypeError("ControlClient needs at least one URL");
    this.#urls = opts.urls.map((u) => u.replace(/\/+$/, ""));
    this.#fetch = opts.fetch ?? ((input, init) => fetch(input, init));
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_CONTROL_REQUEST_TIMEOUT_MS;
    this.#token = opts.token;
    this.#maxBytes = opts.maxResponseBytes ?? MAX_CONTROL_RESPONSE_BYTES;
    this.#jitterMs = opts.failoverJitterMs ?? 0;
    this.#random = opts.random ?? Math.random;
    this.#current = Math.abs(Math.trunc(opts.startAt ?? 0)) % this.#urls.length;
  }

  /** The URL calls go to first. */
  get currentUrl(): string {
    return this.#urls[this.#current]!;
  }

  /**
   * Sends `method path` to the current URL, moving on to the next on failure, at most once
   * around the list. Answers below 500 (including 4xx) are returned, not thrown.
   */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<ControlResponse> {
    const failures: string[] = [];
    for (let i = 0; i < this.#urls.length; i++) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? new Error("aborted");
      const base = this.#urls[this.#current]!;
      try {
        const res = await this.#once(base, method, path, opts);
        if (res.status < 500) return res;
        const code = (res.body as { error?: { code?: unknown } } | null)?.error?.code;
        failures.push(`${base}: ${res.status}${typeof code === "string" ? ` ${code}` : ""}`);
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        failures.push(`${base}: ${(e as Error).message}`);
      }
      this.#current = (this.#current + 1) % this.#urls.length;
      if (this.#jitterMs > 0 && i + 1 < this.#urls.length) {
        await _sleep(this.#random() * this.#jitterMs, opts.signal);
      }
    }
    throw new ControlUnavailableError(failures);
  }

  async #once(
    base: string,
    method: string,
    path: string,
    opts: RequestOptions,
  ): Promise<ControlResponse> {
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? this.#timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    const headers: Record<string, string> = { ...opts.headers, accept: "application/json" };
    if (opts.body !== undefined) headers["content-type"] = "application/json";
    if (this.#token) headers["authorization"] = `Bearer ${this.#token}`;
    const res = await this.#fetch(base + path, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal,
      redirect: "manual",
    });
    const text = await readBoundedText(res, this.#maxBytes);
    let body: unknown = null;
    try {
      body = text === "" ? null : JSON.parse(text);
    } catch {
      body = null;
    }
    return { status: res.status, body, headers: res.headers, url: base };
  }
}

function _sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** An answer over the size limit; the rest of it was not read. */
export class ControlAnswerTooLargeError extends Error {
  override readonly name = "ControlAnswerTooLargeError";
}

/**
 * The body of `res` as text, reading at most `maxBytes`: a larger answer (announced or not, as
 * chunked bodies announce nothing) is cancelled before it is all in memory.
 */
export async function readBoundedText(res: Response, maxBytes: number): Promise<string> {
  const len = Number(res.headers.get("content-length") ?? "0");
  if (len > maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw new ControlAnswerTooLargeError(`answer of ${len} bytes is over ${maxBytes}`);
  }
  if (res.body === null) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        throw new ControlAnswerTooLargeError(`answer is over ${maxBytes} bytes`);
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(all);
}

/** Capped exponential backoff with full jitter; `reset()` after a success. */
export class Backoff {
  #failures = 0;

  /** Creates a backoff from `baseMs` doubling up to `maxMs`; `random` in [0, 1). */
  constructor(
    readonly baseMs: number,
    readonly maxMs: number,
    private readonly _random: () => number = Math.random,
  ) {}

  /** The next delay: uniform in [ceiling/2, ceiling), so it never collapses to zero. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.#failures, 30));
    this.#failures++;
    return ceiling / 2 + this._random() * (ceiling / 2);
  }

  /** Starts over from `baseMs`. */
  reset(): void {
    this.#failures = 0;
  }
}
