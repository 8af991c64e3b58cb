/**
 * `skein ctl` tables show registry strings with their unprintable characters escaped, so an
 * instance stored before registrations were checked (or by a compromised control node) cannot
 * drive the operator's terminal.
 */
import assert from "node:assert/strict";
import { createApi } from "../control/api/mod.ts";
import { FakeBackend } from "../tests/control/fake_backend.ts";
import { runCtl } from "./ctl.ts";
import { escapeCell } from "./ctl/output.ts";

Deno.test("escapeCell() shows control, format and separator characters as escapes", () => {
  const cases: [string, string][] = [
    ["plain v1.2-rc", "plain v1.2-rc"],
    ["\u001b[31mred", "\\x1b[31mred"],
    ["a\r\nb", "a\\x0d\\x0ab"],
    ["nul\u0000", "nul\\x00"],
    ["del\u007f c1\u009b", "del\\x7f c1\\x9b"],
    ["bidi\u202e", "bidi\\u{202e}"],
    ["line\u2028sep", "line\\u{2028}sep"],
    ["ünïcödé 名前", "ünïcödé 名前"],
  ];
  for (const [raw, shown] of cases) assert.equal(escapeCell(raw), shown, JSON.stringify(raw));
});

Deno.test("ctl services prints a stored instance's escapes and CR/NUL escaped", async () => {
  const backend = new FakeBackend();
  backend.applyDirect({
    type: "register_instance",
    instance: {
      id: "a1",
      service: "api",
      node: "vm-1",
      address: "\u001b]0;owned\u0007\u001b[2J10.0.0.1",
      port: 80,
      zone: "z1\r",
      version: "v1\u0000",
      weight: 1,
      tags: ["\u001b[31mred"],
      capabilities: [],
      meta: {},
      health: "passing",
    },
  });
  const app = createApi(backend);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  try {
    let out = "";
    const code = await runCtl(["services", "api"], {
      stdout: (t) => (out += t),
      stderr: () => {},
      env: { SKEIN_CONTROL: `http://127.0.0.1:${server.addr.port}`, SKEIN_TOKEN: "x" },
    });
    assert.equal(code, 0);
    const unprintable = [...out].filter((ch) => ch !== "\n" && /\p{Cc}/u.test(ch));
    assert.deepEqual(unprintable, [], JSON.stringify(out));
    assert.match(out, /\\x1b\]0;owned\\x07\\x1b\[2J10\.0\.0\.1/);
    assert.match(out, /z1\\x0d/);
    assert.match(out, /v1\\x00/);
  } finally {
    await server.shutdown();
  }
});
