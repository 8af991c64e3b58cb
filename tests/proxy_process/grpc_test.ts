/**
 * Runs the gRPC scenarios of `grpc_scenario.ts` (real `@grpc/grpc-js` client and servers
 * through real proxies) in a child `deno test`. The grpc-js side uses Deno's `node:http2`,
 * whose nghttp2 has been seen to abort its process (`find_stream_on_goaway_func` assertion,
 * or a segfault) while a client connection closes; in this process that would end the whole
 * suite. A child that dies by a signal is run once more; a failed assertion is never retried.
 */
import { assert } from "../assert.ts";

const SCENARIO = new URL("./grpc_scenario.ts", import.meta.url).pathname;

/** Whether a finished `deno test` child died of a runtime crash rather than a test failure. */
function crashed(out: Deno.CommandOutput, text: string): boolean {
  return out.signal !== null || out.code >= 128 ||
    /find_stream_on_goaway_func|Segmentation fault|panicked at/.test(text);
}

Deno.test("gRPC through two proxies (grpc_scenario.ts, in a child process)", async () => {
  for (let attempt = 1;; attempt++) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["test", "--allow-all", SCENARIO],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    if (out.success) return;
    if (attempt === 1 && crashed(out, text)) {
      console.warn(`grpc scenario: the child crashed (${out.signal ?? out.code}); once more`);
      continue;
    }
    assert(false, `gRPC scenario failed (exit ${out.signal ?? out.code}):\n${text.slice(-6000)}`);
  }
});
