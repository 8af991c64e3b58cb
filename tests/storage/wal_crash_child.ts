/**
 * Child process for wal_crash_test.ts: appends numbered records from concurrent writers
 * and prints `ack <n>` after each append resolves, until it is killed.
 *
 * Usage: `deno run --allow-read --allow-write wal_crash_child.ts DIR`.
 * @module
 */

import { nullLogger } from "../../common/log.ts";
import { Wal } from "../../control/storage/mod.ts";

/** Concurrent writers, so kills land in the middle of group commits. */
const WRITERS = 8;
/** Small segments, so kills also land around rollovers. */
const SEGMENT_BYTES = 4096;
/** Payload bytes per record besides the id. */
const PAD_BYTES = 60;

async function main(): Promise<void> {
  const dir = Deno.args[0];
  if (!dir) throw new Error("usage: wal_crash_child.ts DIR");
  const { wal, records } = await Wal.open(dir, { segmentBytes: SEGMENT_BYTES }, nullLogger);
  let next = records.length; // ids are dense, so the next id is the number recovered
  const enc = new TextEncoder();
  const out = Deno.stdout;
  await out.write(enc.encode(`start ${next}\n`));
  const writer = async () => {
    for (;;) {
      const id = next++;
      const payload = new Uint8Array(4 + PAD_BYTES).fill(id & 0xff);
      new DataView(payload.buffer).setUint32(0, id, true);
      await wal.append([{ kind: 1, payload }]);
      await out.write(enc.encode(`ack ${id}\n`));
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, writer));
}

if (import.meta.main) await main();
