/**
 * A web app for the fleet tests, run inside a host's namespace: answers its name on `/`, the
 * same five seconds late on `/slow` (a call that is in flight when its host is cut), and `ok` on
 * `/healthz`, on 127.0.0.1 (reached only through the host's proxy).
 *
 * Usage: `deno run --allow-net fleet_app.ts PORT NAME`.
 * @module
 */
const port = Number(Deno.args[0]);
const name = Deno.args[1] ?? "app";
Deno.serve(
  { hostname: "127.0.0.1", port, onListen: () => console.error("app listening") },
  async (r) => {
    const path = new URL(r.url).pathname;
    if (path === "/healthz") return new Response("ok");
    if (path === "/slow") await new Promise((ok) => setTimeout(ok, 5_000));
    return new Response(name);
  },
);
