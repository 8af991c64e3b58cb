import { assert } from "../../tests/assert.ts";
import { isRefusable } from "./refusable.ts";
import { MuxSession } from "../mux/session.ts";
import { memPipe } from "../../tests/mem_pipe.ts";

Deno.test("isRefusable() recognises a mux stream and nothing else", async () => {
  const [ct, st] = memPipe();
  const client = new MuxSession(ct, { role: "client", peerIdentity: null });
  const server = new MuxSession(st, { role: "server", peerIdentity: null, onStream: () => {} });
  const stream = client.open();
  assert(isRefusable(stream), "a mux stream can be refused unread");
  stream.close();
  client.close();
  server.close();

  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dialed = Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const accepted = await listener.accept();
  const tcp = await dialed;
  assert(!isRefusable(tcp), "a plain TCP connection cannot be refused unread");
  assert(!isRefusable(accepted), "neither can the accepted end");
  tcp.close();
  accepted.close();
  listener.close();
});
