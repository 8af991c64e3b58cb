/** Reloads that move a local app do not pile up the tunnel bridge's finished accept loops. */
import { assertEquals } from "../../tests/assert.ts";
import { nullLogger } from "../../common/log.ts";
import { TunnelBridge } from "./tunnel.ts";

Deno.test("a tunnel bridge keeps one accept loop per app however often reloads move it", async () => {
  const bridge = new TunnelBridge(new Map([["db", 5432]]), nullLogger);
  try {
    for (let i = 0; i < 50; i++) bridge.setApps(new Map([["db", 6000 + i]]));
    for (let i = 0; i < 200 && bridge.acceptLoops > 1; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assertEquals(bridge.acceptLoops, 1);
  } finally {
    await bridge.close();
  }
});
