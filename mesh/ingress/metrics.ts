/**
 * The ingress listeners' own metrics: client connections open on each, and those closed at
 * once for being over `max_connections_per_address` (what a flood from one host looks like).
 * @module
 */
import type { Registry } from "../../common/metrics.ts";
import type { HttpForwarder } from "../forward/mod.ts";
import { ingressListenerName } from "./decide.ts";
import type { IngressBinding } from "./listen.ts";

/** Registers the ingress metrics of one data plane (nothing when it has no ingress listener). */
export function registerIngressMetrics(
  registry: Registry,
  bound: readonly IngressBinding[],
  forwarders: readonly HttpForwarder[],
): void {
  if (bound.length === 0) return;
  const open = registry.gauge({
    name: "skein_ingress_connections",
    help:
      "Client connections open on each ingress listener (TLS ones once their handshake is done).",
    labelNames: ["listener"],
  });
  const refused = registry.counter({
    name: "skein_ingress_connections_refused_total",
    help:
      "Client connections an ingress listener closed at once: over max_connections_per_address.",
    labelNames: ["listener"],
  });
  const counted = bound.map(() => 0);
  registry.onCollect(() => {
    bound.forEach((b, i) => {
      const name = ingressListenerName(i);
      open.labels(name).set(forwarders[i]?.stats().active ?? 0);
      const n = b.cap.refused;
      if (n > counted[i]!) refused.labels(name).inc(n - counted[i]!);
      counted[i] = n;
    });
  });
}
