import { assert, assertEquals } from "../tests/assert.ts";
import { isRuntimeDownloadFailure, runtimeDownloadHint } from "./compile_errors.ts";

// What `deno compile --target aarch64-apple-darwin` printed on a machine without DNS.
const OFFLINE = `error: Writing deno compile executable to temporary file 'dist/x.tmp'

Caused by:
    0: Setting up base binary.
    1: error sending request for url (https://dl.deno.land/release/v2.9.6/denort-aarch64-apple-darwin.zip): client error (Connect): dns error: failed to lookup address information: Name or service not known
    2: client error (Connect)
    3: dns error
`;

Deno.test("an offline compile is recognised and explained in one line", () => {
  assert(isRuntimeDownloadFailure(OFFLINE));
  assert(!isRuntimeDownloadFailure('error: Module not found "file:///x/cmd/skein.ts".'));
  const hint = runtimeDownloadHint("aarch64-apple-darwin");
  assertEquals(hint.split("\n").length, 1);
  assert(hint.includes("internet access") && hint.includes("deno task compile"), hint);
});
