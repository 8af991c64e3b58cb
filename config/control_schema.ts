/**
 * The schema of `/etc/skein/control.yaml` (SPEC section 2): the single source of truth for the
 * control node's configuration.
 * @module
 */
import { z } from "zod";
import { duration, host, hostPort, logSettings, name, peer, size, Telemetry } from "./fields.ts";

/** Raft timing; defaults follow etcd's proportions (election = 10 heartbeats). */
export const RaftTuning = z.strictObject({
  heartbeat: duration.default(100),
  election_timeout: duration.default(1000),
  snapshot_every: z.number().int().min(10).max(10_000_000).default(10_000),
}).check((ctx) => {
  if (ctx.value.election_timeout < ctx.value.heartbeat * 3) {
    ctx.issues.push({
      code: "custom",
      input: ctx.value,
      path: ["election_timeout"],
      message: `expected at least 3 heartbeats (${
        ctx.value.heartbeat * 3
      }ms), got ${ctx.value.election_timeout}ms`,
    });
  }
});

/** Limits on what the API accepts. */
export const ControlLimits = z.strictObject({
  max_body: size.default(1024 * 1024),
  request_timeout: duration.default(5000),
  /**
   * How long a node may go without hearing from a leader and still answer proxies' stale reads
   * (catalog watches); past it they get 503 `stale_state` and move to another node.
   */
  max_stale: duration.default(5000).pipe(
    z.number().min(1000, { message: "expected at least 1s (a leader change takes about one)" }),
  ),
});

/**
 * The CA seed: the mesh root certificate and its key. Every control node of a cluster gets the
 * same pair (`skein ca create`), so they can issue their own certificates and speak mTLS before
 * Raft has replicated anything; the first leader then commits the seed as the cluster CA.
 */
export const ControlTls = z.strictObject({
  ca_cert_file: z.string().min(1).default("/etc/skein/ca.pem"),
  ca_key_file: z.string().min(1).default("/etc/skein/ca.key"),
  /**
   * With an offline root: the intermediate that signs in its place, and its key. Default:
   * `intermediate.pem` and `intermediate.key` beside `ca_cert_file`. When either exists, the
   * node holds no root key (`ca_key_file` must be absent) and `ca_cert_file` is the root only.
   */
  intermediate_cert_file: z.string().min(1).optional(),
  intermediate_key_file: z.string().min(1).optional(),
  /** Lifetime of this node's own certificate (API and Raft). */
  cert_ttl: duration.default(24 * 3600 * 1000).pipe(
    z.number().min(60_000, { message: "expected at least 1m" }).max(30 * 24 * 3600 * 1000, {
      message: "expected at most 30d",
    }),
  ),
  /** Lifetime of the certificates signed for proxies; they renew at two thirds of it. */
  proxy_cert_ttl: duration.default(24 * 3600 * 1000).pipe(
    z.number().min(60_000, { message: "expected at least 1m" }).max(30 * 24 * 3600 * 1000, {
      message: "expected at most 30d",
    }),
  ),
});

const _DAY_MS = 24 * 3600 * 1000;

/**
 * How the leader carries CA rotations through. Without `rotate_before_expiry` a rotation
 * starts only when an operator runs `skein ctl ca rotate`; either way the leader then waits
 * for every member to trust the new root (at most `trust_wait`, then `on_stuck` decides),
 * activates it, and drops the old root once every leaf comes from the new one.
 */
export const ControlCa = z.strictObject({
  /** Start a rotation by itself when the active root expires within this long. */
  // At most 365d like any duration: well inside a new root's 10 years, so a rotation never
  // starts another as soon as it ends.
  rotate_before_expiry: duration.pipe(
    z.number().min(_DAY_MS, { message: "expected at least 1d" }),
  ).optional(),
  /** Longest wait for members to confirm they trust the new root. */
  trust_wait: duration.default(3600 * 1000).pipe(
    z.number().min(10_000, { message: "expected at least 10s" }).max(30 * _DAY_MS, {
      message: "expected at most 30d",
    }),
  ),
  /** After `trust_wait`: activate without the stragglers, or pause with an alert. */
  on_stuck: z.enum(["proceed", "pause"]).default("proceed"),
});

/** The control node configuration. */
export const ControlConfig = z.strictObject({
  node: name,
  data_dir: z.string().min(1).default("/var/lib/skein/control"),
  api: hostPort.default({ hostname: "0.0.0.0", port: 7400 }),
  raft: hostPort.default({ hostname: "0.0.0.0", port: 7401 }),
  advertise: host.default("127.0.0.1"),
  peers: z.array(peer).default([]),
  /** A node added at runtime to a running cluster starts empty and waits for the leader. */
  join: z.boolean().default(false),
  trust_domain: z.string().regex(
    /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/,
    {
      message: 'expected a lower-case DNS-like name such as "skein.local"',
    },
  ).default("skein.local"),
  bootstrap_token_file: z.string().min(1).default("/etc/skein/admin.token"),
  tls: ControlTls.default(ControlTls.parse({})),
  ca: ControlCa.default(ControlCa.parse({})),
  raft_tuning: RaftTuning.default(RaftTuning.parse({})),
  limits: ControlLimits.default(ControlLimits.parse({})),
  log: logSettings.default(logSettings.parse({})),
  /** Traces of the API calls (a server span per request), exported like the proxies'. */
  telemetry: Telemetry.default(Telemetry.parse({})),
}).check((ctx) => {
  const seen = new Map<string, number>();
  ctx.value.peers.forEach((p, i) => {
    const prev = seen.get(p.id);
    if (prev !== undefined) {
      ctx.issues.push({
        code: "custom",
        input: p,
        path: ["peers", i],
        message: `duplicate peer id "${p.id}" (also at peers[${prev}])`,
      });
    }
    seen.set(p.id, i);
  });
  const ca = ctx.value.ca;
  const needed = ca.trust_wait + ctx.value.tls.proxy_cert_ttl;
  if (ca.rotate_before_expiry !== undefined && ca.rotate_before_expiry < needed) {
    ctx.issues.push({
      code: "custom",
      input: ca.rotate_before_expiry,
      path: ["ca", "rotate_before_expiry"],
      message: `expected at least trust_wait + tls.proxy_cert_ttl (${
        Math.ceil(needed / 3600_000)
      }h), or the root expires before a rotation can finish`,
    });
  }
  if (ctx.value.peers.length > 0 && !seen.has(ctx.value.node)) {
    ctx.issues.push({
      code: "custom",
      input: ctx.value.peers,
      path: ["peers"],
      message: `expected the list to include this node "${ctx.value.node}"`,
    });
  }
});

/** A validated control configuration. */
export type ControlConfig = z.infer<typeof ControlConfig>;
