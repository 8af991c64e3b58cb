/**
 * A listener facing clients outside the mesh (`publicAnswers`, an ingress listener) answers a
 * failure of the inside with its status and cause, but without the endpoint's address, while
 * a mesh listener's answer names it for the operator.
 * @module
 */
import { assert, assertEquals } from "../../tests/assert.ts";
import { nullLogger } from "../../common/log.ts";
import { HttpForwarder } from "./mod.ts";
import { staticRouter } from "../../tests/mesh_hotpath/static_router.ts";

/** A port nothing listens on. */
function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function get(publicAnswers: boolean, port: number): Promise<string> {
  const fwd = new HttpForwarder(Deno.listen({ hostname: "127.0.0.1", port: 0 }), {
    node: "gw",
    listener: { name: "svc", protocol: "http" },
    router: staticRouter({ endpoints: [{ key: `10.9.8.7:${port}`, hostname: "127.0.0.1", port }] }),
    logger: nullLogger,
    publicAnswers,
  });
  try {
    const res = await fetch(`http://127.0.0.1:${fwd.addr.port}/`);
    return `${res.status} ${res.headers.get("x-skein-error")} ${await res.text()}`;
  } finally {
    await fwd.close();
  }
}

Deno.test("an outside client's 5xx names its cause but no inside address; a mesh client's names it", async () => {
  const port = closedPort();
  const outside = await get(true, port);
  assert(outside.startsWith("502 upstream_connect_failure "), outside);
  assert(!outside.includes("10.9.8.7") && !outside.includes(String(port)), outside);
  const inside = await get(false, port);
  assertEquals(inside.startsWith("502 upstream_connect_failure "), true, inside);
  assert(inside.includes("10.9.8.7"), inside);
});
