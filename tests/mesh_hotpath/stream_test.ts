import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { startBackend } from "../../bench/apps/backend.ts";
import { rssBytes } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const TEN_MB = 10 * 1024 * 1024;
/** Peak RSS growth allowed while 10 MB bodies flow: less than one body, so none is buffered. */
const MAX_RSS_GROWTH_BYTES = 8 * 1024 * 1024;

/** Starts bench/apps/forwarder_proc.ts as a child process and waits for its port. */
async function forwarderProcess(upstreamPort: number) {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../../bench/apps/forwarder_proc.ts", import.meta.url).pathname,
      "--upstream",
      `127.0.0.1:${upstreamPort}`,
    ],
    stdout: "piped",
    stderr: "inherit",
  });
  const child = cmd.spawn();
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("forwarder process exited before listening");
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  const port = Number(text.match(/listening (\d+)/)![1]);
  return {
    port,
    pid: child.pid,
    stop: async () => {
      child.kill("SIGTERM");
      await child.stdout.cancel().catch(() => {});
      return await child.status;
    },
  };
}

/** A body stream of `total` bytes in 64 KiB pieces, sent chunked by fetch. */
function generated(total: number): ReadableStream<Uint8Array> {
  const piece = new Uint8Array(64 * 1024).fill(97);
  let sent = 0;
  return new ReadableStream({
    pull(ctl) {
      if (sent >= total) return ctl.close();
      const n = Math.min(piece.length, total - sent);
      sent += n;
      ctl.enqueue(piece.slice(0, n));
    },
  });
}

async function count(body: ReadableStream<Uint8Array> | null): Promise<number> {
  let n = 0;
  if (body) { for await (const c of body) n += c.length; }
  return n;
}

Deno.test("10 MB bodies stream both ways while the proxy's memory stays flat", opts, async () => {
  const backend = await startBackend();
  const fwd = await forwarderProcess(backend.port);
  const base = `http://127.0.0.1:${fwd.port}`;
  try {
    for (let i = 0; i < 20; i++) await (await fetch(`${base}/`)).text();
    const before = await rssBytes(fwd.pid, "VmRSS");

    const dl = await fetch(`${base}/bytes?n=${TEN_MB}`);
    assertEquals(dl.headers.get("content-length"), String(TEN_MB));
    assertEquals(await count(dl.body), TEN_MB);
    const dlc = await fetch(`${base}/bytes?n=${TEN_MB}&chunked=1`);
    assertEquals(dlc.headers.get("content-length"), null);
    assertEquals(await count(dlc.body), TEN_MB);

    const upCl = await fetch(`${base}/sink`, { method: "POST", body: new Uint8Array(TEN_MB) });
    assertEquals(await upCl.text(), String(TEN_MB));
    const upChunked = await fetch(`${base}/sink`, { method: "POST", body: generated(TEN_MB) });
    assertEquals(await upChunked.text(), String(TEN_MB));

    const echo = await fetch(`${base}/echo`, { method: "POST", body: generated(TEN_MB) });
    assertEquals(await count(echo.body), TEN_MB);

    const peak = await rssBytes(fwd.pid, "VmHWM");
    const growth = peak - before;
    assert(
      growth < MAX_RSS_GROWTH_BYTES,
      `proxy peak RSS grew by ${(growth / 1048576).toFixed(1)} MiB while relaying 50 MB`,
    );
  } finally {
    assertEquals((await fwd.stop()).code, 0);
    await backend.close();
  }
});
