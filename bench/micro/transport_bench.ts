/**
 * Micro-benchmark (not a test): frames/s and MB/s from one transport to another on loopback.
 *
 * Run: `deno run --allow-net bench/micro/transport_bench.ts [total_mib]`
 * @module
 */

import { nodeId } from "../../common/ids.ts";
import { nullLogger } from "../../common/log.ts";
import { DEFAULT_MAX_FRAME_BYTES } from "../../control/transport/frame.ts";
import { Transport } from "../../control/transport/transport.ts";

/** Frame sizes measured, smallest first: Raft heartbeats up to snapshot chunks. */
const FRAME_SIZES = [64, 512, 4 * 1024, 64 * 1024, 1024 * 1024];
/** Data moved per frame size, unless given on the command line. */
const DEFAULT_TOTAL_MIB = 256;
/** Frames per size at most, so tiny frames do not take minutes. */
const MAX_FRAMES = 2_000_000;
/** Queue bound for the sender; large so the benchmark measures the pipe, not the drops. */
const QUEUE_FRAMES = 16 * 1024;

const _enc = new TextEncoder();
function _print(line: string): void {
  Deno.stdout.writeSync(_enc.encode(line + "\n"));
}

async function main(): Promise<void> {
  const totalMib = Number(Deno.args[0] ?? DEFAULT_TOTAL_MIB);
  let received = 0;
  let receivedBytes = 0;
  let wake: (() => void) | null = null;
  let target = Infinity;
  const common = {
    clusterId: "bench",
    listen: { hostname: "127.0.0.1", port: 0 },
    peers: new Map(),
    maxQueuedFrames: QUEUE_FRAMES,
    maxQueuedBytes: 256 * 1024 * 1024,
    maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
    logger: nullLogger,
    reconnect: { baseMs: 10, maxMs: 200 },
  };
  const a = await Transport.start({ ...common, self: nodeId("a") }, () => {});
  const b = await Transport.start({ ...common, self: nodeId("b") }, (_from, frame) => {
    received++;
    receivedBytes += frame.length;
    if (received >= target && wake) wake();
  });
  const peers = new Map([[nodeId("a"), a.addr], [nodeId("b"), b.addr]]);
  a.setPeers(peers);
  b.setPeers(peers);
  while (!a.stats().get(nodeId("b"))?.connected || !b.stats().get(nodeId("a"))?.inboundConnected) {
    await new Promise((r) => setTimeout(r, 5));
  }

  _print(`frame_bytes  frames      seconds  frames/s     MB/s`);
  for (const size of FRAME_SIZES) {
    const frames = Math.max(1, Math.min(MAX_FRAMES, Math.floor((totalMib * 1024 * 1024) / size)));
    const frame = new Uint8Array(size).fill(7);
    received = 0;
    receivedBytes = 0;
    target = frames;
    const done = new Promise<void>((r) => (wake = r));
    const start = performance.now();
    let sent = 0;
    while (sent < frames) {
      while (sent < frames && a.send(nodeId("b"), frame)) sent++;
      // Queue full: let the writer and reader run before offering more.
      if (sent < frames) await new Promise((r) => setTimeout(r, 0));
    }
    await done;
    const secs = (performance.now() - start) / 1000;
    _print(
      `${String(size).padEnd(12)} ${String(frames).padEnd(11)} ${secs.toFixed(3).padEnd(8)} ${
        Math.round(frames / secs).toString().padEnd(12)
      } ${(receivedBytes / secs / 1e6).toFixed(1)}`,
    );
  }
  const s = a.stats().get(nodeId("b"))!;
  _print(`sender drops while queue was full (retried): ${s.dropped}`);
  await a.close();
  await b.close();
}

if (import.meta.main) await main();
