/**
 * SPIFFE identities as the mesh writes them (`spiffe://<trust domain>/svc/<service>` for a
 * service's proxies, `.../gateway/<name>` for an ingress gateway, `.../control/<node>` for a
 * control node): building, parsing and reading
 * them from a certificate's subject alternative names. Shared by the CA, the control plane's
 * TLS and the proxies.
 * @module
 */

/** What a certificate identifies: a service's proxies, an ingress gateway or a control node. */
export type Identity =
  | { readonly kind: "service"; readonly service: string }
  | { readonly kind: "gateway"; readonly gateway: string }
  | { readonly kind: "control"; readonly node: string };

/** The path segment of each identity kind in a SPIFFE id (`spiffe://<td>/<segment>/<name>`). */
const _SEGMENT = { service: "svc", gateway: "gateway", control: "control" } as const;

/** A parsed SPIFFE id of this mesh. */
export type SpiffeId = Identity & { readonly trustDomain: string; readonly uri: string };

/** Longest SPIFFE id accepted (the SPIFFE spec's limit). */
export const SPIFFE_ID_MAX_CHARS = 2048;

const _TRUST_DOMAIN = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;
const _NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

/** Whether `s` is a valid trust domain ("skein.local"). */
export function isTrustDomain(s: string): boolean {
  return s.length <= 255 && _TRUST_DOMAIN.test(s);
}

/** Whether `s` is a valid service or node name inside a SPIFFE id. */
export function isIdentityName(s: string): boolean {
  return _NAME.test(s);
}

/** The name an identity carries (service, gateway or node name). */
export function identityName(id: Identity): string {
  return id.kind === "service" ? id.service : id.kind === "gateway" ? id.gateway : id.node;
}

/**
 * How a proxy's identity is written where a service name would go (metrics' `source`,
 * `Authorization` `from:`): the service name itself, or `gateway/<name>`, which no service
 * name can be (they hold no "/").
 */
export function identityLabel(id: Identity): string {
  return id.kind === "service" ? id.service : `${_SEGMENT[id.kind]}/${identityName(id)}`;
}

/** The proxy identity an {@linkcode identityLabel} stands for; null for anything else. */
export function identityOfLabel(label: string): Identity | null {
  if (label.startsWith("gateway/")) {
    const gateway = label.slice("gateway/".length);
    return isIdentityName(gateway) ? { kind: "gateway", gateway } : null;
  }
  return isIdentityName(label) ? { kind: "service", service: label } : null;
}

/**
 * The SPIFFE id URI of an identity: `spiffe://<td>/svc/<service>`, `.../gateway/<name>` or
 * `.../control/<node>`.
 */
export function spiffeIdFor(trustDomain: string, id: Identity): string {
  const name = identityName(id);
  if (!isTrustDomain(trustDomain)) {
    throw new RangeError(`invalid trust domain ${JSON.stringify(trustDomain)}`);
  }
  if (!isIdentityName(name)) {
    throw new RangeError(`invalid ${id.kind} name ${JSON.stringify(name)}`);
  }
  return `spiffe://${trustDomain}/${_SEGMENT[id.kind]}/${name}`;
}

/** Parses a SPIFFE id of the skein shape; null for anything else (never throws). */
export function parseSpiffeId(uri: string): SpiffeId | null {
  if (uri.length > SPIFFE_ID_MAX_CHARS || !uri.startsWith("spiffe://")) return null;
  const parts = uri.slice("spiffe://".length).split("/");
  if (parts.length !== 3) return null;
  const [td, kind, name] = parts as [string, string, string];
  if (!isTrustDomain(td) || !isIdentityName(name)) return null;
  if (kind === "svc") return { kind: "service", service: name, trustDomain: td, uri };
  if (kind === "gateway") return { kind: "gateway", gateway: name, trustDomain: td, uri };
  if (kind === "control") return { kind: "control", node: name, trustDomain: td, uri };
  return null;
}

/**
 * The URI SANs of a certificate as `node:tls` reports them (`subjectaltname` is a
 * comma-separated string such as `URI:spiffe://a/svc/b, DNS:x`).
 */
export function uriSans(subjectaltname: string | undefined): string[] {
  if (!subjectaltname) return [];
  const out: string[] = [];
  for (const part of subjectaltname.split(",")) {
    const p = part.trim();
    if (p.startsWith("URI:")) out.push(p.slice(4));
  }
  return out;
}

/**
 * The single SPIFFE id in a peer certificate's SANs. A certificate carrying several URI SANs
 * is refused (null): the X509-SVID spec allows exactly one, and ambiguity is how confusion
 * attacks start.
 */
export function spiffeIdFromSans(subjectaltname: string | undefined): SpiffeId | null {
  const uris = uriSans(subjectaltname);
  if (uris.length !== 1) return null;
  return parseSpiffeId(uris[0]!);
}
