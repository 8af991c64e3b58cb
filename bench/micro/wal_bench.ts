/**
 * Measures WAL group commit: 32 concurrent writers appending 100-byte records.
 *
 * Run: `deno run --allow-read --allow-write bench/micro/wal_bench.ts [seconds] [dir]`.
 * Prints appends/s, fsyncs/s and appends per fsync. Not a test; figures depend on the disk.
 * @module
 */

import { nullLogger } from "../../common/log.ts";
import { FaultyFs } from "../../control/storage/fs.ts";
import { Wal } from "../../control/storage/wal.ts";

/** Concurrent writers, each awaiting its own append before issuing the next. */
const WRITERS = 32;
/** Payload bytes per record. */
const RECORD_BYTES = 100;
/** How long to run when no duration is given. */
const DURATION_S_DEFAULT = 3;

async function main(): Promise<void> {
  const duration_s = Number(Deno.args[0] ?? DURATION_S_DEFAULT);
  const dir = Deno.args[1] ?? await Deno.makeTempDir({ prefix: "skein_wal_bench_" });
  const fs = new FaultyFs(); // no faults planned: used only to count fsyncs independently
  const { wal } = await Wal.open(dir, { fs }, nullLogger);
  const payload = new Uint8Array(RECORD_BYTES).fill(0x5a);
  let stop = false;
  const start_ms = performance.now();
  const writers = Array.from({ length: WRITERS }, async () => {
    while (!stop) await wal.append([{ kind: 1, payload }]);
  });
  await new Promise((r) => setTimeout(r, duration_s * 1000));
  stop = true;
  await Promise.all(writers);
  const elapsed_s = (performance.now() - start_ms) / 1000;
  await wal.close();
  const s = wal.stats();
  const out = [
    `writers=${WRITERS} record_bytes=${RECORD_BYTES} seconds=${elapsed_s.toFixed(2)} dir=${dir}`,
    `appends=${s.appends} appends_per_s=${(s.appends / elapsed_s).toFixed(0)}`,
    `fsyncs=${fs.counts.sync} fsyncs_per_s=${(fs.counts.sync / elapsed_s).toFixed(0)}`,
    `appends_per_fsync=${(s.appends / Math.max(1, s.fsyncs)).toFixed(1)} ` +
    `max_appends_per_fsync=${s.maxBatchAppends}`,
  ];
  // A script, not library code: stdout is its interface.
  await Deno.stdout.write(new TextEncoder().encode(out.join("\n") + "\n"));
  if (Deno.args[1] === undefined) await Deno.remove(dir, { recursive: true });
}

if (import.meta.main) await main();
