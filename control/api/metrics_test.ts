import assert from "node:assert/strict";
import { ApiMetrics, renderControlMetrics } from "./metrics.ts";
import { FakeBackend } from "../../tests/control/fake_backend.ts";

Deno.test("the API server's connection cuts are exported by reason, with the handshakes in progress", () => {
  const m = new ApiMetrics();
  const without = renderControlMetrics(new FakeBackend(), m);
  assert.ok(!without.includes("skein_control_api_connections_cut_total"));
  m.connections = { refused: { headers_timeout: 3, address_limit: 0 }, handshakesInFlight: 2 };
  const text = renderControlMetrics(new FakeBackend(), m);
  assert.match(text, /# TYPE skein_control_api_connections_cut_total counter/);
  assert.match(text, /^skein_control_api_connections_cut_total\{reason="headers_timeout"\} 3$/m);
  assert.match(text, /^skein_control_api_connections_cut_total\{reason="address_limit"\} 0$/m);
  assert.match(text, /^skein_control_api_handshakes 2$/m);
});
