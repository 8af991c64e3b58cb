/**
 * How a proxy knows it is an ingress gateway: proxy.yaml's `gateway: NAME`, which must agree
 * with the certificate the join token obtained (`skein ctl tokens create --gateway NAME` gives
 * `spiffe://<td>/gateway/NAME`). Pure.
 * @module
 */
import type { SpiffeId } from "../../common/tls/mod.ts";

/** Why `id` cannot be the identity of a proxy configured with `gateway`; null when it can. */
export function gatewayIdentityProblem(gateway: string | undefined, id: SpiffeId): string | null {
  if (gateway !== undefined && (id.kind !== "gateway" || id.gateway !== gateway)) {
    return `this proxy is gateway ${gateway} but its certificate is ${id.uri}; give it a ` +
      `token from skein ctl tokens create --gateway ${gateway} (and clear data_dir)`;
  }
  if (gateway === undefined && id.kind === "gateway") {
    return `the certificate is the gateway identity ${id.uri}; set gateway: ${id.gateway} in ` +
      `proxy.yaml, or give the proxy a --service token`;
  }
  return null;
}
