import { assertEquals } from "../../tests/assert.ts";
import { MAX_MUX_SESSIONS_PER_ENDPOINT, parseMuxSessions } from "./data_plane.ts";
import { DEFAULT_SESSIONS_PER_ENDPOINT } from "../mux/connector.ts";

Deno.test("SKEIN_MESH_MUX_SESSIONS takes a whole count from 1, capped; anything else is the default", () => {
  for (
    const [v, want] of [
      [undefined, DEFAULT_SESSIONS_PER_ENDPOINT],
      ["3", 3],
      ["1", 1],
      ["0", DEFAULT_SESSIONS_PER_ENDPOINT],
      ["-2", DEFAULT_SESSIONS_PER_ENDPOINT],
      ["1.5", DEFAULT_SESSIONS_PER_ENDPOINT],
      ["two", DEFAULT_SESSIONS_PER_ENDPOINT],
      ["", DEFAULT_SESSIONS_PER_ENDPOINT],
      ["1000", MAX_MUX_SESSIONS_PER_ENDPOINT],
    ] as const
  ) {
    assertEquals(parseMuxSessions(v), want, String(v));
  }
});
