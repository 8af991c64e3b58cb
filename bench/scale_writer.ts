/**
 * The writer of `deno task bench scale`, run as a Worker: its own event loop takes each write's
 * acknowledgement the moment it arrives, however busy the thread holding the watchers is (in
 * that thread the acknowledgement waited behind the watchers' answers and hid their latency).
 * Times are absolute (`performance.timeOrigin + performance.now()`), comparable across threads.
 * @module
 */
/** A write the bench asks for. */
export interface WriteOrder {
  /** URL of the instance to PUT. */
  url: string;
  /** Its body. */
  body: unknown;
  /** Operator token. */
  token: string;
  /** Trust bundle of the nodes' certificates (PEM). */
  caPem: string;
}

/** What the writer answers: status, the acknowledged index, and when the answer arrived. */
export interface WriteDone {
  /** HTTP status. */
  status: number;
  /** `index` of the answer, when there is one. */
  index: number | null;
  /** Absolute time of the acknowledgement, ms. */
  ackAt: number;
}

const _worker = globalThis as unknown as {
  onmessage: ((e: MessageEvent<WriteOrder>) => void) | null;
  postMessage(m: WriteDone): void;
};
let client: Deno.HttpClient | null = null;
_worker.onmessage = async (e) => {
  const o = e.data;
  client ??= Deno.createHttpClient({ caCerts: [o.caPem] });
  let status = 0;
  let index: number | null = null;
  try {
    const res = await fetch(o.url, {
      method: "PUT",
      client,
      headers: { authorization: `Bearer ${o.token}`, "content-type": "application/json" },
      body: JSON.stringify(o.body),
      signal: AbortSignal.timeout(30_000),
    });
    status = res.status;
    const json = await res.json().catch(() => null) as { index?: unknown } | null;
    if (typeof json?.index === "number") index = json.index;
  } catch { /* status 0: no answer */ }
  const ackAt = performance.timeOrigin + performance.now();
  _worker.postMessage({ status, index, ackAt });
};
