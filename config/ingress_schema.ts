/**
 * The `ingress:` section of proxy.yaml (SPEC §4a): gateway listeners for clients outside the
 * mesh, plain HTTP or TLS with operator-provided certificate files, routing by host and path
 * prefix to mesh services. Kept apart from `proxy_schema.ts`, which only refers to it.
 * @module
 */
import { z } from "zod";
import { duration, hostPort, name, size } from "./fields.ts";

/** Most ingress listeners one proxy runs. */
export const MAX_INGRESS_LISTENERS = 16;
/** Most routes one ingress listener holds. */
export const MAX_INGRESS_ROUTES = 256;
/** Most certificates one TLS ingress listener serves (picked by SNI). */
export const MAX_INGRESS_CERTIFICATES = 64;

/** A host a route matches: a DNS name, or `*.` and a DNS suffix (any name below it). */
export const ingressHost = z.string().max(253).regex(
  /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/,
  { message: 'expected a host name like "shop.example.com" or "*.example.com"' },
).transform((h) => h.toLowerCase());

/** One certificate file pair. */
export const IngressCertificate = z.strictObject({
  /** PEM certificate (chain) file; its DNS names decide which SNI names it serves. */
  cert_file: z.string().min(1).max(4096),
  /** PEM private key file of that certificate. */
  key_file: z.string().min(1).max(4096),
});

/**
 * TLS of an ingress listener: one certificate (`cert_file`, `key_file`), or several
 * (`certificates`), each served to the SNI names its certificate carries; the first is served
 * to clients that send no name or one no certificate carries. Files are re-read when they
 * change on disk.
 */
export const IngressTls = z.strictObject({
  cert_file: z.string().min(1).max(4096).optional(),
  key_file: z.string().min(1).max(4096).optional(),
  certificates: z.array(IngressCertificate).min(1).max(MAX_INGRESS_CERTIFICATES).optional(),
  /**
   * How often the files' modification times are checked, so a replaced certificate is served
   * without a restart; "0" never checks.
   * @default 2s
   */
  reload_interval: duration.default(2000),
}).check((ctx) => {
  const t = ctx.value;
  const single = t.cert_file !== undefined || t.key_file !== undefined;
  if (single === (t.certificates !== undefined)) {
    ctx.issues.push({
      code: "custom",
      input: t,
      path: ["cert_file"],
      message: "expected cert_file and key_file, or certificates (a list of them), not both",
    });
  } else if (single && (t.cert_file === undefined || t.key_file === undefined)) {
    ctx.issues.push({
      code: "custom",
      input: t,
      path: [t.cert_file === undefined ? "cert_file" : "key_file"],
      message: "expected both cert_file and key_file",
    });
  }
}).transform((t) => ({
  certificates: t.certificates ?? [{ cert_file: t.cert_file!, key_file: t.key_file! }],
  reload_interval: t.reload_interval,
}));

/** Where requests for a host and path prefix go. */
export const IngressRoute = z.strictObject({
  /** Exact host, or `*.example.com`; omitted: any host. */
  host: ingressHost.optional(),
  /** Path prefix, matched on whole segments (`/api` takes `/api` and `/api/x`, not `/apix`). */
  path_prefix: z.string().max(1024).startsWith("/", {
    message: 'expected a path starting with "/"',
  }).default("/"),
  /** The mesh service that serves them. */
  service: name,
});

/** Limits against hostile clients, per ingress listener. */
export const IngressLimits = z.strictObject({
  /** Open connections (TLS handshakes included) from one client address. */
  max_connections_per_address: z.number().int().min(1).max(100_000).default(64),
  /** Largest request body, by Content-Length or decoded chunks (413 beyond). */
  max_body_bytes: size.default(10 * 1024 * 1024),
  /** Largest request head. */
  max_header_bytes: size.default(32 * 1024),
  /** Time a client has to send a whole request head (slowloris). */
  header_read_timeout: duration.default(10_000),
});

/** One ingress listener. */
export const IngressListener = z.strictObject({
  listen: hostPort,
  /** Omitted: plain HTTP. */
  tls: IngressTls.optional(),
  routes: z.array(IngressRoute).max(MAX_INGRESS_ROUTES).default([]),
  /**
   * A plain listener that only sends clients to HTTPS: every request is answered 308 with
   * `Location: https://<host>[:port]<path>`; the value is the HTTPS port (443 is left out).
   */
  redirect_https: z.number().int().min(1).max(65535).optional(),
  limits: IngressLimits.default(IngressLimits.parse({})),
}).check((ctx) => {
  const l = ctx.value;
  if (l.redirect_https !== undefined) {
    if (l.tls !== undefined) {
      ctx.issues.push({
        code: "custom",
        input: l.redirect_https,
        path: ["redirect_https"],
        message: "redirect_https is for a plain listener; this one has tls",
      });
    }
    if (l.routes.length > 0) {
      ctx.issues.push({
        code: "custom",
        input: l.routes,
        path: ["routes"],
        message: "a redirect_https listener routes nothing; remove routes",
      });
    }
  } else if (l.routes.length === 0) {
    ctx.issues.push({
      code: "custom",
      input: l.routes,
      path: ["routes"],
      message: "expected at least one route (or redirect_https)",
    });
  }
  const seen = new Map<string, number>();
  l.routes.forEach((r, i) => {
    const k = `${r.host ?? "*"} ${r.path_prefix}`;
    if (seen.has(k)) {
      ctx.issues.push({
        code: "custom",
        input: r,
        path: ["routes", i],
        message: `routes[${seen.get(k)}] already routes host ${
          r.host ?? "(any)"
        } prefix ${r.path_prefix}`,
      });
    }
    seen.set(k, i);
  });
});

/** A validated ingress listener. */
export type IngressListener = z.infer<typeof IngressListener>;

/** The `ingress:` list. */
export const IngressList = z.array(IngressListener).max(MAX_INGRESS_LISTENERS).default([]);
