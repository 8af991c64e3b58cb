import { assert, assertEquals } from "../../tests/assert.ts";
import { type LogFields, type Logger, nullLogger } from "../../common/log.ts";
import { AccessLog } from "./access_log.ts";

function recording(): { log: Logger; errors: string[] } {
  const errors: string[] = [];
  const log: Logger = {
    ...nullLogger,
    error: (m: string, _f?: LogFields) => errors.push(m),
    with: () => log,
  };
  return { log, errors };
}

Deno.test("AccessLog writes queued lines in batches and reopens after a move", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/access.log`;
    const { log } = recording();
    const a = new AccessLog(path, { logger: log });
    a.write('{"n":1}');
    a.write('{"n":2}');
    await a.flush();
    assertEquals(await Deno.readTextFile(path), '{"n":1}\n{"n":2}\n');
    // logrotate: the file is moved away, then SIGHUP asks for a reopen.
    await Deno.rename(path, `${dir}/access.log.1`);
    a.reopen();
    a.write('{"n":3}');
    await a.flush();
    assertEquals(await Deno.readTextFile(path), '{"n":3}\n');
    assertEquals(await Deno.readTextFile(`${dir}/access.log.1`), '{"n":1}\n{"n":2}\n');
    await a.close();
    assertEquals(a.stats, { written: 3, dropped: 0, errors: 0 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("AccessLog counts and reports an unwritable file instead of throwing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { log, errors } = recording();
    // A directory in the way: opening it for append fails.
    const a = new AccessLog(dir, { logger: log });
    a.write("x");
    a.write("y");
    await a.flush();
    a.write("z");
    await a.flush();
    assertEquals(a.stats.written, 0);
    assertEquals(a.stats.dropped, 3);
    assert(a.stats.errors >= 1);
    assertEquals(errors.length, 1, "reported once per failure spell");
    await a.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("AccessLog drops (and counts) lines beyond its queue bound", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = new AccessLog(`${dir}/a.log`, { logger: nullLogger, maxQueuedBytes: 10 });
    a.write("12345");
    a.write("67890");
    assertEquals(a.stats.dropped, 1);
    await a.close();
    assertEquals(await Deno.readTextFile(`${dir}/a.log`), "12345\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("AccessLog keeps UTF-8, lines longer than a chunk and lines written during a flush", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/a.log`;
    const a = new AccessLog(path, { logger: nullLogger, maxQueuedBytes: 1 << 20 });
    const long = "x".repeat(100_000);
    const expected: string[] = ['{"p":"/caf\u00e9/\u{1F600}"}', long];
    a.write(expected[0]!);
    a.write(long);
    // Enough short lines to fill several chunks, half of them queued while a flush runs.
    for (let i = 0; i < 3000; i++) expected.push(`{"n":${i}}`);
    for (let i = 0; i < 1500; i++) a.write(expected[i + 2]!);
    const flushing = a.flush();
    for (let i = 1500; i < 3000; i++) a.write(expected[i + 2]!);
    await flushing;
    await a.close();
    assertEquals(await Deno.readTextFile(path), expected.join("\n") + "\n");
    assertEquals(a.stats, { written: 3002, dropped: 0, errors: 0 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("AccessLog writes a full chunk at once, before the interval, and the rest on close", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/access.log`;
    // An interval no test waits out: only a full chunk can make lines reach the file early.
    const a = new AccessLog(path, { logger: nullLogger, flushIntervalMs: 3_600_000 });
    const line = `{"pad":"${"x".repeat(1000)}"}`;
    for (let i = 0; i < 100; i++) a.write(line); // about 100 KB: more than one 64 KiB chunk
    for (let i = 0; i < 500 && a.stats.written === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert(a.stats.written > 0 && a.stats.written < 100, `written early: ${a.stats.written}`);
    const early = (await Deno.readTextFile(path)).split("\n").length - 1;
    assertEquals(early, a.stats.written);
    await a.close();
    const text = await Deno.readTextFile(path);
    assertEquals(text, `${line}\n`.repeat(100));
    assertEquals(a.stats, { written: 100, dropped: 0, errors: 0 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
