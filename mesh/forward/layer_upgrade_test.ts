import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { parseResponseHead } from "../http1/mod.ts";
import { feedRequest, readUntil, sessionPair } from "../../tests/mesh_hotpath/session_pair.ts";
import { splice } from "./layer_upgrade.ts";
import { Done } from "./exchange.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const enc = new TextEncoder();

Deno.test(
  "splice() joins client and upstream until a policy change closes both",
  opts,
  async () => {
    const p = await sessionPair();
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    const ep = { key: `127.0.0.1:${port}`, hostname: "127.0.0.1", port };
    try {
      const [uc, server] = await Promise.all([p.s.f.upstreams.acquire(ep, true), l.accept()]);
      // The client sent its first frame right behind the upgrade request.
      feedRequest(
        p.s,
        "GET /ws HTTP/1.1\r\nhost: a\r\nconnection: upgrade\r\nupgrade: x\r\n\r\nearly",
      );
      // The upstream's 101 arrived with its first bytes behind it.
      const raw = enc.encode("HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\n\r\nhello");
      uc.buf.set(raw);
      const end = raw.length - "hello".length;
      const res = parseResponseHead(uc.buf, 0, end);
      let allowed = true;
      const joined = splice(p.s, uc, res, end, raw.length, () => allowed);

      const head = await readUntil(p.client, (t) => t.endsWith("hello"));
      assert(head.startsWith("HTTP/1.1 101 "), head);
      assertEquals(await readUntil(server, (t) => t === "early"), "early");
      await p.client.write(enc.encode("ping"));
      assertEquals(await readUntil(server, (t) => t === "ping"), "ping");
      await server.write(enc.encode("pong"));
      assertEquals(await readUntil(p.client, (t) => t === "pong"), "pong");
      assertEquals(p.s.x.sentStatus, 101);

      allowed = false;
      assertEquals(p.s.f.rechecked.recheck(), 1);
      assertEquals(await joined, Done.Close);
      assert(p.s.closed, "the client side is closed too");
      server.close();
    } finally {
      l.close();
      p.close();
    }
  },
);
