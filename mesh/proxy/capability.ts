/**
 * Capability routing for agent fleets: a request (header `x-skein-capability: a, b`) or an
 * upstream (`capabilities: [a, b]`) asks for any instance, of any service, whose
 * `capabilities` include all of them. Pure logic over the catalog; the router keeps one
 * destination per distinct set asked for.
 * @module
 */
import { CAPABILITY_KEY_PREFIX, capabilityKey } from "../../config/capability_key.ts";
import type { CatalogInstance } from "../discovery/mod.ts";
import { ProxyError } from "../forward/mod.ts";

/** The request header asking for capabilities (comma-separated for several). */
export const CAPABILITY_HEADER = "x-skein-capability";
/** Most capabilities one request may ask for. */
export const MAX_ASKED_CAPABILITIES = 16;

const _NAME = /^[A-Za-z0-9._\/-]{1,64}$/;

/** Whether a destination key stands for a capability set rather than a service. */
export function isCapabilityKey(key: string): boolean {
  return key.startsWith(CAPABILITY_KEY_PREFIX);
}

/** The capabilities a key stands for. */
export function capabilitiesOfKey(key: string): string[] {
  return key.slice(CAPABILITY_KEY_PREFIX.length).split(",");
}

/** The destination key a header value asks for, or a 400 when it is malformed. */
export function keyOfHeader(value: string): string | ProxyError {
  const caps = value.split(",").map((c) => c.trim()).filter((c) => c !== "");
  if (
    caps.length === 0 || caps.length > MAX_ASKED_CAPABILITIES || !caps.every((c) => _NAME.test(c))
  ) {
    return new ProxyError(
      400,
      "bad_request",
      `${CAPABILITY_HEADER} must list 1 to ${MAX_ASKED_CAPABILITIES} capabilities of letters, digits, ".", "_", "/" or "-"`,
    );
  }
  return capabilityKey(caps);
}

/** The instances, across all services, that declare every capability of `caps`. */
export function capableInstances(
  services: Readonly<Record<string, readonly CatalogInstance[]>>,
  caps: readonly string[],
): CatalogInstance[] {
  const out: CatalogInstance[] = [];
  for (const svc of Object.keys(services)) {
    for (const i of services[svc]!) {
      if (caps.every((c) => i.capabilities.includes(c))) out.push(i);
    }
  }
  return out;
}
