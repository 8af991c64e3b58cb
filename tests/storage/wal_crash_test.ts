import { assert, assertEquals } from "../assert.ts";
import { nullLogger } from "../../common/log.ts";
import { Wal } from "../../control/storage/mod.ts";

/** Crash-and-recover rounds against the same directory. */
const ROUNDS = 3;
/** New acknowledgements to wait for in each round before the kill. */
const ACKS_PER_ROUND = 400;

const CHILD = new URL("./wal_crash_child.ts", import.meta.url).pathname;

/** Runs the child until it has acknowledged `acks` new records, SIGKILLs it, returns the ids. */
async function runAndKill(dir: string, acks: number): Promise<{ start: number; acked: number[] }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", CHILD, dir],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const acked: number[] = [];
  let start = -1;
  let buf = "";
  const dec = new TextDecoder();
  const reader = child.stdout.getReader();
  try {
    while (acked.length < acks) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`child exited after ${acked.length} acks`);
      buf += dec.decode(value, { stream: true });
      const lines = buf.split("\n");
      buf = lines.pop()!;
      for (const l of lines) {
        const [word, n] = l.split(" ");
        if (word === "start") start = Number(n);
        else if (word === "ack") acked.push(Number(n));
      }
    }
  } finally {
    child.kill("SIGKILL");
    await reader.cancel();
    await child.status;
  }
  return { start, acked };
}

Deno.test("Wal keeps every acknowledged record across repeated SIGKILLs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein_wal_crash_" });
  try {
    let durable = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const { start, acked } = await runAndKill(dir, ACKS_PER_ROUND);
      assertEquals(start, durable, `round ${round}: the child resumed after the recovered records`);
      const { wal, records } = await Wal.open(dir, {}, nullLogger);
      await wal.close();
      // Records land in call order and ids are taken in call order, so what survives must
      // be exactly the ids 0..n-1, and it must include everything acknowledged.
      for (let i = 0; i < records.length; i++) {
        const id = new DataView(
          records[i]!.payload.buffer,
          records[i]!.payload.byteOffset,
        ).getUint32(0, true);
        if (id !== i) throw new Error(`round ${round}: record ${i} holds id ${id}`);
      }
      const maxAcked = Math.max(...acked);
      assert(
        records.length > maxAcked,
        `round ${round}: ${records.length} records survive but id ${maxAcked} was acknowledged`,
      );
      durable = records.length;
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
