/**
 * A fixed-rate HTTP/1.1 load generator (wrk2 is not available): requests are scheduled at a
 * constant rate and latency is measured from the scheduled time, so a stall shows up as latency
 * instead of silently lowering the rate (no coordinated omission).
 * @module
 */

/** Options for {@linkcode fixedRate}. */
export interface FixedRateOptions {
  /** Target port on 127.0.0.1. */
  port: number;
  /** Requests per second. @default 1000 */
  rate?: number;
  /** How long to send, in seconds. @default 5 */
  durationSec?: number;
  /** Keep-alive connections used. @default 16 */
  connections?: number;
  /** Request path. @default "/" */
  path?: string;
}

/** Latency percentiles from a fixed-rate run. */
export interface FixedRateResult {
  /** Requests completed. */
  completed: number;
  /** Requests that failed. */
  errors: number;
  /** Median latency, ms. */
  p50Ms: number;
  /** 99th percentile latency, ms. */
  p99Ms: number;
}

/** Reads one response with a Content-Length body from `conn`; tiny responses only. */
async function readResponse(conn: Deno.Conn, buf: Uint8Array): Promise<boolean> {
  let len = 0;
  while (true) {
    const n = await conn.read(buf.subarray(len));
    if (n === null) return false;
    len += n;
    const text = new TextDecoder().decode(buf.subarray(0, len));
    const he = text.indexOf("\r\n\r\n");
    if (he === -1) continue;
    const m = /content-length:\s*(\d+)/i.exec(text.slice(0, he));
    const cl = m ? Number(m[1]) : 0;
    if (len >= he + 4 + cl) return true;
  }
}

/** Runs a fixed-rate load against 127.0.0.1:port and returns latency percentiles. */
export async function fixedRate(opts: FixedRateOptions): Promise<FixedRateResult> {
  const rate = opts.rate ?? 1000;
  const total = Math.round(rate * (opts.durationSec ?? 5));
  const request = new TextEncoder().encode(
    `GET ${opts.path ?? "/"} HTTP/1.1\r\nHost: bench\r\n\r\n`,
  );
  const idle: Deno.Conn[] = [];
  const all: Deno.Conn[] = [];
  for (let i = 0; i < (opts.connections ?? 16); i++) {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: opts.port });
    idle.push(c);
    all.push(c);
  }
  const waiting: Array<(c: Deno.Conn) => void> = [];
  const take = (): Promise<Deno.Conn> =>
    idle.length > 0 ? Promise.resolve(idle.pop()!) : new Promise((r) => waiting.push(r));
  const give = (c: Deno.Conn) => {
    const w = waiting.shift();
    if (w) w(c);
    else idle.push(c);
  };
  const latencies: number[] = [];
  let errors = 0;
  const inflight: Promise<void>[] = [];
  const start = performance.now();
  const interval = 1000 / rate;
  for (let i = 0; i < total; i++) {
    const scheduled = start + i * interval;
    const wait = scheduled - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inflight.push((async () => {
      const c = await take();
      const buf = new Uint8Array(16 * 1024);
      try {
        await c.write(request);
        if (await readResponse(c, buf)) latencies.push(performance.now() - scheduled);
        else errors++;
      } catch {
        errors++;
      }
      give(c);
    })());
  }
  await Promise.all(inflight);
  for (const c of all) {
    try {
      c.close();
    } catch {
      // already closed
    }
  }
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
  return { completed: latencies.length, errors, p50Ms: pct(0.5), p99Ms: pct(0.99) };
}
