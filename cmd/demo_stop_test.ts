/** Which way a child of `skein demo` ended counts as a failure. */
import { assertEquals } from "../tests/assert.ts";
import { stopProblem } from "./demo_stop.ts";

Deno.test("a child that exited 0 stopped cleanly", () => {
  assertEquals(stopProblem({ name: "cp-1", code: 0, signal: null, killed: false }, 10_000), null);
});

Deno.test("a child ended by a signal, exiting non-zero or killed is named as a failure", () => {
  assertEquals(
    stopProblem({ name: "cp-1", code: 143, signal: "SIGTERM", killed: false }, 10_000),
    "cp-1 was ended by SIGTERM (exit code 143)",
  );
  assertEquals(
    stopProblem({ name: "edge", code: 1, signal: null, killed: false }, 10_000),
    "edge exited with code 1",
  );
  assertEquals(
    stopProblem({ name: "cp-2", code: 137, signal: "SIGKILL", killed: true }, 10_000),
    "cp-2 did not stop within 10 s of SIGTERM and was killed",
  );
});
