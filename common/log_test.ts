import { assert, assertEquals, assertMatch } from "../tests/assert.ts";
import { createLogger, formatJson, formatLogfmt, memoryLogger, REDACTED } from "./log.ts";

Deno.test("formatLogfmt() quotes values with spaces and escapes quotes", () => {
  const line = formatLogfmt(0, "info", "node started", { node: "cp-1", why: 'a "b" c', n: 3 });
  assertEquals(
    line,
    'ts=1970-01-01T00:00:00.000Z level=info msg="node started" node=cp-1 why="a \\"b\\" c" n=3',
  );
});

Deno.test("formatJson() writes one parseable object per event", () => {
  const obj = JSON.parse(formatJson(0, "warn", "slow", { peer: "cp-2", ms: 12 }));
  assertEquals(obj, {
    ts: "1970-01-01T00:00:00.000Z",
    level: "warn",
    msg: "slow",
    peer: "cp-2",
    ms: 12,
  });
});

Deno.test("secrets never reach a log line, by key or by value shape", () => {
  const log = memoryLogger();
  log.info("joined", {
    token: "abc123",
    bootstrap_token: "xyz",
    private_key: "k",
    authorization: "Bearer eyJhbGciOi",
    note: "header was Bearer sekrit-value",
    pem: "-----BEGIN PRIVATE KEY-----MIIE",
  });
  log.info("Bearer leaked-in-message");
  const all = log.lines.join("\n");
  for (
    const secret of ["abc123", "xyz", "eyJhbGciOi", "sekrit-value", "MIIE", "leaked-in-message"]
  ) {
    assert(!all.includes(secret), `${secret} leaked: ${all}`);
  }
  assert(all.includes(REDACTED));
});

Deno.test("levels below the minimum are dropped and with() adds fields", () => {
  const lines: string[] = [];
  const log = createLogger({ level: "warn", sink: (l) => lines.push(l), now: () => 0 })
    .with({ node: "cp-1" });
  log.info("hidden");
  log.warn("shown");
  assertEquals(lines.length, 1);
  assertMatch(lines[0]!, /level=warn msg=shown node=cp-1/);
  assertEquals(log.enabled("debug"), false);
  assertEquals(log.enabled("error"), true);
});
