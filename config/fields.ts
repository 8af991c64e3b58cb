/**
 * Reusable zod field types for configuration: durations, sizes, addresses, ids.
 * Each reports "expected …, got …" so the loader can print it next to file:line:col.
 * @module
 */
import { z } from "zod";
import {
  type HostPort,
  isHost,
  NODE_ID,
  parseHostPort,
  parsePeer,
  type PeerSpec,
} from "./address.ts";
import { parseDuration, parseSize } from "./units.ts";

/** Renders a YAML value for an error message, shortened. */
export function show(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (typeof v === "string") return JSON.stringify(v.length > 60 ? v.slice(0, 57) + "..." : v);
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return String(v);
}

/** A duration string parsed to milliseconds. */
export const duration = z.unknown().transform((v, ctx): number => {
  if (typeof v === "string") {
    const ms = parseDuration(v);
    if (ms !== null) return ms;
  }
  ctx.addIssue({ code: "custom", message: `expected a duration like "1s", got ${show(v)}` });
  return z.NEVER;
});

/** A size string ("64KiB") or plain byte count parsed to bytes. */
export const size = z.unknown().transform((v, ctx): number => {
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return v;
  if (typeof v === "string") {
    const n = parseSize(v);
    if (n !== null) return n;
  }
  ctx.addIssue({ code: "custom", message: `expected a size like "64KiB", got ${show(v)}` });
  return z.NEVER;
});

/** A `host:port` listen or dial address. */
export const hostPort = z.unknown().transform((v, ctx): HostPort => {
  if (typeof v === "string") {
    const hp = parseHostPort(v);
    if (typeof hp !== "string") return hp;
    ctx.addIssue({ code: "custom", message: hp });
    return z.NEVER;
  }
  ctx.addIssue({
    code: "custom",
    message: `expected an address like "127.0.0.1:7400", got ${show(v)}`,
  });
  return z.NEVER;
});

/** A bare host name or IP. */
export const host = z.unknown().transform((v, ctx): string => {
  if (typeof v === "string" && isHost(v)) return v;
  ctx.addIssue({ code: "custom", message: `expected a host name or IP address, got ${show(v)}` });
  return z.NEVER;
});

/** A Raft peer `id=host:port`. */
export const peer = z.unknown().transform((v, ctx): PeerSpec => {
  if (typeof v === "string") {
    const p = parsePeer(v);
    if (typeof p !== "string") return p;
    ctx.addIssue({ code: "custom", message: p });
    return z.NEVER;
  }
  ctx.addIssue({
    code: "custom",
    message: `expected a peer like "cp-1=10.0.0.1:7401", got ${show(v)}`,
  });
  return z.NEVER;
});

/** A node id or service name. */
export const name = z.string().regex(NODE_ID, {
  message: 'expected a name of letters, digits, "-", "_" or "." (at most 63 characters)',
});

/** An http(s) URL. */
export const url = z.unknown().transform((v, ctx): string => {
  if (typeof v === "string") {
    try {
      const u = new URL(v);
      if (u.protocol === "http:" || u.protocol === "https:") return v.replace(/\/+$/, "");
    } catch {
      // fall through to the error below
    }
  }
  ctx.addIssue({
    code: "custom",
    message: `expected a URL like "https://10.0.0.1:7400", got ${show(v)}`,
  });
  return z.NEVER;
});

/** A percentage from 0 to 100. */
export const percent = z.number().min(0).max(100);

/** The log settings shared by both modes. */
export const logSettings = z.strictObject({
  level: z.enum(["debug", "info", "warn", "error"]).default("info"),
  format: z.enum(["logfmt", "json"]).default("logfmt"),
});

/** Telemetry export settings. */
export const Telemetry = z.strictObject({
  /** The OTLP/HTTP collector base URL; spans go to `<otlp>/v1/traces`. Absent: no tracing. */
  otlp: url.optional(),
  /**
   * How often a request arriving without a trace starts one: a ratio 0..1, `always`, `never`.
   * @default DEFAULT_SAMPLING (common/trace/trace_context.ts): 1%
   */
  sampling: z.union([z.literal("always"), z.literal("never"), z.number().min(0).max(1)])
    .optional(),
}).check((ctx) => {
  // Nothing accepted and ignored: a sampling setting means nothing without a collector.
  if (ctx.value.sampling !== undefined && ctx.value.otlp === undefined) {
    ctx.issues.push({
      code: "custom",
      input: ctx.value.sampling,
      path: ["sampling"],
      message: "has no effect without telemetry.otlp (set the collector URL, or remove it)",
    });
  }
});
