/**
 * The declarative resource kinds of SPEC section 4, as applied with `skein ctl apply`.
 * @module
 */
import { z } from "zod";
import { duration, name, percent } from "./fields.ts";
import { MAX_FAULT_DELAY_MS } from "./resource_limits.ts";

const Backoff = z.strictObject({ base: duration.default(25), max: duration.default(1000) });

const RetryOn = z.enum(["5xx", "gateway_error", "reset", "connect_failure", "retriable_4xx"]);

/** How a caller treats a destination service. */
export const Policy = z.strictObject({
  kind: z.literal("Policy"),
  service: name,
  load_balancer: z.strictObject({
    algorithm: z.enum(["round_robin", "p2c_least_request", "ewma", "ring_hash"]).default(
      "p2c_least_request",
    ),
    hash_on: z.strictObject({ header: z.string().min(1).max(128) }).optional(),
  }).default({ algorithm: "p2c_least_request" }),
  locality: z.strictObject({
    prefer_zone: z.boolean().default(true),
    failover_below_healthy_percent: percent.default(70),
  }).default({ prefer_zone: true, failover_below_healthy_percent: 70 }),
  timeout: duration.default(15_000),
  retries: z.strictObject({
    attempts: z.number().int().min(0).max(10).default(2),
    per_try_timeout: duration.optional(),
    backoff: Backoff.default({ base: 25, max: 1000 }),
    on: z.array(RetryOn).default(["connect_failure", "reset"]),
    budget_percent: percent.default(20),
    retry_non_idempotent: z.boolean().default(false),
  }).optional(),
  circuit_breaker: z.strictObject({
    // Not enforced: refused by writes (WritableResourceSchema) and warned about when an older
    // stored Policy still carries them, so nobody mistakes them for limits in force.
    max_connections: z.number().int().min(1).optional(),
    max_pending: z.number().int().min(0).optional(),
    max_requests: z.number().int().min(1).default(1024),
  }).optional(),
  outlier_detection: z.strictObject({
    consecutive_5xx: z.number().int().min(1).default(5),
    consecutive_connect_failures: z.number().int().min(1).default(5),
    interval: duration.default(10_000),
    base_ejection: duration.default(30_000),
    max_ejection_percent: percent.default(50),
  }).optional(),
}).check((ctx) => {
  const lb = ctx.value.load_balancer;
  if (lb.algorithm === "ring_hash" && !lb.hash_on) {
    ctx.issues.push({
      code: "custom",
      input: lb,
      path: ["load_balancer", "hash_on"],
      message: "expected hash_on: { header: NAME } with algorithm ring_hash",
    });
  }
});

const Backend = z.strictObject({
  version: z.string().max(64).optional(),
  weight: z.number().int().min(0).max(10_000).default(100),
});

/** A header condition of a Route match: an exact value, or `{ present: true }`. */
const HeaderMatch = z.union([
  z.string(),
  z.strictObject({ present: z.literal(true) }),
]);

/** Where requests for a service go. */
export const Route = z.strictObject({
  kind: z.literal("Route"),
  service: name,
  rules: z.array(
    z.strictObject({
      match: z.strictObject({
        path_prefix: z.string().startsWith("/").optional(),
        path: z.string().startsWith("/").optional(),
        method: z.string().min(1).max(32).optional(),
        headers: z.record(z.string().min(1).max(128), HeaderMatch).optional(),
      }).optional(),
      backends: z.array(Backend).min(1).max(64),
      // Keeps a user on one backend: the version is chosen by a hash of this header's value.
      hash_on: z.strictObject({ header: z.string().min(1).max(128) }).optional(),
      // A copy of the selected requests goes to another version of the service, or another
      // service: exactly one of them.
      mirror: z.strictObject({
        version: z.string().max(64).optional(),
        service: name.optional(),
        percent: percent,
      }).refine((m) => (m.version === undefined) !== (m.service === undefined), {
        message: "expected exactly one of version or service",
      }).optional(),
      fault: z.strictObject({
        delay: z.strictObject({ percent, fixed: duration }).optional(),
        abort: z.strictObject({ percent, status: z.number().int().min(200).max(599) })
          .optional(),
      }).optional(),
    }).check((ctx) => {
      if (ctx.value.backends.every((b) => b.weight === 0)) {
        ctx.issues.push({
          code: "custom",
          input: ctx.value.backends,
          path: ["backends"],
          message: "the backends' weights sum to 0: no request could be routed",
        });
      }
    }),
  ).min(1).max(256),
});

/** Who may call a service. */
export const Authorization = z.strictObject({
  kind: z.literal("Authorization"),
  service: name,
  default: z.enum(["allow", "deny"]).default("deny"),
  audit_allowed: z.boolean().default(false),
  allow: z.array(z.strictObject({
    from: z.array(z.string().min(1)).min(1),
    methods: z.array(z.string().min(1)).optional(),
    paths: z.array(z.string().startsWith("/")).optional(),
  })).default([]),
  deny: z.array(z.strictObject({
    from: z.array(z.string().min(1)).min(1),
    methods: z.array(z.string().min(1)).optional(),
    paths: z.array(z.string().startsWith("/")).optional(),
  })).default([]),
});

/** Inbound request rate limit of a service. */
export const RateLimit = z.strictObject({
  kind: z.literal("RateLimit"),
  service: name,
  requests_per_second: z.number().positive().max(10_000_000),
  burst: z.number().int().min(1).max(100_000_000),
  /** `caller`: one bucket per calling identity instead of one for everybody. */
  per: z.literal("caller").optional(),
  /** `instance`: each instance admits the limit; `fleet`: all instances together. */
  scope: z.enum(["instance", "fleet"]).default("instance"),
  /** Requests matching a route (first match wins) get that route's own bucket. */
  routes: z.array(z.strictObject({
    match: z.strictObject({
      path: z.string().startsWith("/").optional(),
      path_prefix: z.string().startsWith("/").optional(),
      method: z.string().min(1).max(32).optional(),
    }),
    requests_per_second: z.number().positive().max(10_000_000),
    burst: z.number().int().min(1).max(100_000_000),
  })).max(64).optional(),
});

/** Most hosts one ExternalService lists (its endpoints). */
export const MAX_EXTERNAL_HOSTS = 64;

/**
 * An egress destination outside the mesh: the proxy originates TLS to its `hosts` (one
 * destination, the hosts its endpoints), verifying them against the runtime's built-in roots
 * and, with `tls.ca_file`, that file's certificates too.
 */
export const ExternalService = z.strictObject({
  kind: z.literal("ExternalService"),
  name,
  hosts: z.array(
    z.string().regex(/^[a-zA-Z0-9.-]+:\d{1,5}$/, {
      message: 'expected "host:port"',
    }).refine((h) => {
      const port = Number(h.slice(h.lastIndexOf(":") + 1));
      return port >= 1 && port <= 65535;
    }, { message: "expected a port from 1 to 65535" }),
  ).min(1).max(MAX_EXTERNAL_HOSTS),
  tls: z.strictObject({
    /** PEM file, on each proxy's host, of CA certificates trusted besides the built-in roots. */
    ca_file: z.string().min(1).max(4096),
  }).optional(),
});

/** Any resource, discriminated on `kind`. */
export const ResourceSchema = z.discriminatedUnion("kind", [
  Policy,
  Route,
  Authorization,
  RateLimit,
  ExternalService,
]);

/** A validated resource. */
export type Resource = z.infer<typeof ResourceSchema>;

/** Keys a stored resource may still carry from older versions but a write may not add. */
export const RETIRED_POLICY_KEYS = ["max_connections", "max_pending"] as const;

/**
 * Resources as `skein ctl apply` and the API accept them for writing: {@linkcode
 * ResourceSchema} without the retired `circuit_breaker` keys (never enforced; `max_requests`
 * is the breaker's limit) and without fault delays over {@linkcode MAX_FAULT_DELAY_MS}. Readers
 * keep using `ResourceSchema`, so an older stored resource still loads (with a warning, or
 * its delay clamped by the proxy) instead of being dropped whole.
 */
export const WritableResourceSchema = ResourceSchema.check((ctx) => {
  const r = ctx.value;
  if (r.kind === "Route") {
    r.rules.forEach((rule, i) => {
      const ms = rule.fault?.delay?.fixed;
      if (ms === undefined || ms <= MAX_FAULT_DELAY_MS) return;
      ctx.issues.push({
        code: "custom",
        input: ms,
        path: ["rules", i, "fault", "delay", "fixed"],
        message: `a fault delay is at most ${MAX_FAULT_DELAY_MS / 1000}s, got ${ms}ms`,
      });
    });
  }
  if (r.kind !== "Policy" || r.circuit_breaker === undefined) return;
  for (const k of RETIRED_POLICY_KEYS) {
    if (r.circuit_breaker[k] !== undefined) {
      ctx.issues.push({
        code: "custom",
        input: r.circuit_breaker[k],
        path: ["circuit_breaker", k],
        message: `${k} is not enforced by skein and no longer accepted; ` +
          "the breaker's limit is max_requests",
      });
    }
  }
});

/** The resource kinds, as written in YAML. */
export const RESOURCE_KINDS = [
  "Policy",
  "Route",
  "Authorization",
  "RateLimit",
  "ExternalService",
] as const;

/** A resource kind name. */
export type ResourceKind = typeof RESOURCE_KINDS[number];

/** The name that identifies a resource within its kind (its service, or its own name). */
export function resourceName(r: Resource): string {
  return r.kind === "ExternalService" ? r.name : r.service;
}
