/**
 * The schema of `/etc/skein/proxy.yaml` (SPEC section 3).
 * @module
 */
import { z } from "zod";
import { duration, host, hostPort, logSettings, name, size, Telemetry, url } from "./fields.ts";
import { capabilityKey } from "./capability_key.ts";
import { IngressList } from "./ingress_schema.ts";
import {
  instanceLabels,
  instanceMeta,
  MAX_INSTANCE_LABELS,
  MAX_INSTANCE_VERSION_CHARS,
  registryString,
} from "./registry_limits.ts";
export { Telemetry };

/** Active health check of the local app. */
export const HealthCheck = z.strictObject({
  http: z.string().startsWith("/", { message: 'expected a path starting with "/"' }),
  interval: duration.default(5000),
  timeout: duration.default(1000),
  healthy_threshold: z.number().int().min(1).max(100).default(1),
  unhealthy_threshold: z.number().int().min(1).max(100).default(3),
});

/** A local service instance this proxy fronts. */
export const LocalService = z.strictObject({
  name,
  id: name.optional(),
  port: z.number().int().min(1).max(65535),
  // The registry's bounds, so what the control plane would refuse is refused at start.
  version: registryString(MAX_INSTANCE_VERSION_CHARS).default(""),
  weight: z.number().int().min(0).max(10_000).default(1),
  tags: instanceLabels.default([]),
  capabilities: instanceLabels.default([]),
  meta: instanceMeta.default({}),
  health: HealthCheck.optional(),
  /**
   * How the local app speaks: `http` (HTTP/1.1), `http2` or `grpc` (h2c with prior knowledge;
   * HTTP/2 calls reach it as HTTP/2, trailers included). An app reached as raw TCP needs no
   * setting: callers tunnel to it through an upstream with `protocol: tcp`.
   */
  protocol: z.enum(["http", "http2", "grpc"]).default("http"),
}).check((ctx) => {
  const s = ctx.value;
  // Health probes speak HTTP/1.1: an HTTP/2-only app would fail every probe and get no traffic.
  if (s.health !== undefined && s.protocol !== "http") {
    ctx.issues.push({
      code: "custom",
      input: s.health,
      path: ["health"],
      message: `health checks speak HTTP/1.1 and this app is declared ${s.protocol}: ` +
        "leave health out (its heartbeat keeps it registered)",
    });
  }
});

/** A capability a request or upstream may ask for (comma-free, as the header lists them). */
export const capabilityName = z.string().regex(/^[A-Za-z0-9._\/-]{1,64}$/, {
  message: 'expected a capability of letters, digits, ".", "_", "/" or "-" (at most 64)',
});

/** A local listener for one dependency. */
export const Upstream = z.strictObject({
  /** The service called; or, instead, `capabilities`. */
  service: name.optional(),
  /** Any instance, of any service, declaring all of these (HTTP only). */
  capabilities: z.array(capabilityName).min(1).max(MAX_INSTANCE_LABELS).optional(),
  listen: hostPort,
  protocol: z.enum(["http", "tcp"]).default("http"),
  /**
   * The local service these calls are made for: the mesh hop presents its certificate, so the
   * callee authorizes that service, and metrics carry it as `source`. A proxy cannot tell which
   * local app opened a connection, so with several `services` each app gets its own listener.
   * @default the first of `services`
   */
  caller: name.optional(),
}).check((ctx) => {
  const u = ctx.value;
  if ((u.service === undefined) === (u.capabilities === undefined)) {
    ctx.issues.push({
      code: "custom",
      input: u,
      path: ["service"],
      message: "expected exactly one of service or capabilities",
    });
  } else if (u.capabilities !== undefined && u.protocol !== "http") {
    ctx.issues.push({
      code: "custom",
      input: u.protocol,
      path: ["protocol"],
      message: "an upstream by capabilities speaks http",
    });
  }
}).transform((u) => ({
  ...u,
  // Everything downstream keys upstreams by service: a capability upstream gets its own key.
  service: u.service ?? capabilityKey(u.capabilities!),
}));

export { upstreamKey } from "./upstream_key.ts";

/** Data-plane limits; defaults are generous but finite. */
export const ProxyLimits = z.strictObject({
  max_header_bytes: size.default(64 * 1024),
  max_headers: z.number().int().min(8).max(1000).default(100),
  max_connections: z.number().int().min(1).max(1_000_000).default(10_000),
  idle_timeout: duration.default(60_000),
  header_read_timeout: duration.default(10_000),
  /** An opaque TCP connection (either end) silent this long is closed; "0" = never. */
  tcp_idle_timeout: duration.default(60 * 60_000),
});

/** Access log settings: one JSON line per request and per TCP connection. */
export const AccessLogSettings = z.strictObject({
  /** A file (appended to; reopened on SIGHUP) or `stdout`. */
  path: z.string().min(1).max(4096),
  format: z.literal("json").default("json"),
});

/** The proxy configuration. */
export const ProxyConfig = z.strictObject({
  node: name,
  zone: z.string().max(64).default(""),
  advertise: host.default("127.0.0.1"),
  control: z.array(
    // Join tokens and catalogs travel on it: never in clear.
    url.refine((u) => u.startsWith("https://"), { message: "expected an https:// URL" }),
  ).min(1, { message: "expected at least one control URL" }),
  token_file: z.string().min(1).default("/etc/skein/proxy.token"),
  /** The mesh CA bundle (PEM) this proxy trusts the control API with before it has an identity. */
  ca_file: z.string().min(1).default("/etc/skein/ca.pem"),
  data_dir: z.string().min(1).default("/var/lib/skein/proxy"),
  admin: hostPort.default({ hostname: "127.0.0.1", port: 15000 }),
  inbound: hostPort.default({ hostname: "0.0.0.0", port: 15443 }),
  http_proxy: hostPort.optional(),
  services: z.array(LocalService).max(64).default([]),
  upstreams: z.array(Upstream).max(1024).default([]),
  /**
   * This proxy is the ingress gateway NAME: it enrols with a `--gateway NAME` join token and
   * calls services as `spiffe://<td>/gateway/NAME`. A gateway fronts no services.
   */
  gateway: name.optional(),
  /** Gateway listeners for clients outside the mesh (needs `gateway`). */
  ingress: IngressList,
  /**
   * Data-plane worker threads, each serving every traffic listener (SO_REUSEPORT):
   * `auto` = one per CPU; 1 = serve on the main thread. The default is 1: each worker costs
   * ~60 MB, and one loop takes the least CPU per request (about 15% less than two on 2 cores),
   * leaving the most for the app; `auto` carries about 10% more at saturation (docs/proxy.md).
   */
  workers: z.union([z.literal("auto"), z.number().int().min(1).max(64)]).default(1),
  drain_timeout: duration.default(15_000),
  heartbeat_interval: duration.default(2000),
  /**
   * `registered_only`: `http_proxy` refuses (403 `egress_denied`, audited) a Host that is
   * neither a mesh service nor a host of an `ExternalService`. `open` answers such a Host as
   * it always did (404 `no_route`).
   */
  egress: z.enum(["open", "registered_only"]).default("open"),
  access_log: AccessLogSettings.optional(),
  telemetry: Telemetry.default(Telemetry.parse({})),
  limits: ProxyLimits.default(ProxyLimits.parse({})),
  log: logSettings.default(logSettings.parse({})),
}).check((ctx) => {
  if (ctx.value.ingress.length > 0 && ctx.value.gateway === undefined) {
    ctx.issues.push({
      code: "custom",
      input: ctx.value.ingress,
      path: ["ingress"],
      message: "ingress needs gateway: NAME, the identity the gateway calls services as",
    });
  }
  if (ctx.value.gateway !== undefined && ctx.value.services.length > 0) {
    ctx.issues.push({
      code: "custom",
      input: ctx.value.services,
      path: ["services"],
      message: "a gateway proxy fronts no services; run them behind their own proxy",
    });
  }
  const names = new Map<string, number>();
  ctx.value.services.forEach((s, i) => {
    const key = s.id ?? s.name;
    if (names.has(key)) {
      ctx.issues.push({
        code: "custom",
        input: s,
        path: ["services", i, "name"],
        message: `duplicate local instance "${key}" (also services[${
          names.get(key)
        }]); set distinct ids`,
      });
    }
    names.set(key, i);
  });
  const listens = new Map<string, number>();
  const local = ctx.value.services.map((s) => s.name);
  const calls = new Map<string, number>();
  ctx.value.upstreams.forEach((u, i) => {
    if (u.caller !== undefined && !local.includes(u.caller)) {
      ctx.issues.push({
        code: "custom",
        input: u.caller,
        path: ["upstreams", i, "caller"],
        message: `"${u.caller}" is not a service of this proxy (${
          local.length > 0 ? `services: ${[...new Set(local)].join(", ")}` : "it has no services"
        })`,
      });
    }
    // Two listeners making the same calls with the same identity would only split one pool.
    const as = u.caller ?? local[0] ?? "";
    const call = `${u.service}\u0000${as}`;
    if (calls.has(call)) {
      ctx.issues.push({
        code: "custom",
        input: u,
        path: ["upstreams", i, "service"],
        message: `upstreams[${calls.get(call)}] already calls ${u.service}${
          as ? ` as ${as}` : ""
        }; give each listener of one service its own caller`,
      });
    }
    calls.set(call, i);
    const key = `${u.listen.hostname}:${u.listen.port}`;
    if (listens.has(key) && u.listen.port !== 0) {
      ctx.issues.push({
        code: "custom",
        input: u,
        path: ["upstreams", i, "listen"],
        message: `address ${key} is already used by upstreams[${listens.get(key)}]`,
      });
    }
    listens.set(key, i);
  });
});

/** A validated proxy configuration. */
export type ProxyConfig = z.infer<typeof ProxyConfig>;
