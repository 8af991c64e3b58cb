/**
 * What a denied caller receives, and the audit line of every decision worth recording.
 * @module
 */
import type { CompiledAuthorization, Decision } from "./authz.ts";

/** Header naming why the proxy refused (the decision's reason). */
export const DENIED_HEADER = "x-skein-denied";
/** Header naming the proxy that generated a response (SPEC section 3). */
export const PROXY_HEADER = "x-skein-proxy";

function _body(decision: Decision): string {
  return JSON.stringify({
    error: {
      code: "denied",
      message: `denied by policy: ${decision.reason}${decision.rule ? ` (${decision.rule})` : ""}`,
    },
  });
}

/** A Web `Response` 403 for a denied request. */
export function deniedResponse(decision: Decision, opts: { proxyNode: string }): Response {
  return new Response(_body(decision), {
    status: 403,
    headers: {
      "content-type": "application/json",
      [DENIED_HEADER]: decision.reason,
      [PROXY_HEADER]: opts.proxyNode,
    },
  });
}

const _enc = new TextEncoder();

/**
 * The same 403 as raw HTTP/1.1 bytes, for the proxy's own HTTP/1.1 writer. The node name is
 * stripped of anything but header-safe characters, so it cannot split the response.
 */
export function deniedHttp1(
  decision: Decision,
  opts: { proxyNode: string; keepAlive?: boolean },
): Uint8Array {
  const body = _body(decision);
  const node = opts.proxyNode.replace(/[^\x21-\x7e]/g, "");
  const head = "HTTP/1.1 403 Forbidden\r\n" +
    "content-type: application/json\r\n" +
    `content-length: ${_enc.encode(body).length}\r\n` +
    `${DENIED_HEADER}: ${decision.reason}\r\n` +
    `${PROXY_HEADER}: ${node}\r\n` +
    `connection: ${opts.keepAlive ? "keep-alive" : "close"}\r\n\r\n`;
  return _enc.encode(head + body);
}

/** One audited decision. */
export interface AuditEvent {
  /** When, ms since the epoch. */
  readonly time: number;
  /** The caller's SPIFFE id, or null when it had none. */
  readonly caller: string | null;
  /** The protected service. */
  readonly service: string;
  /** HTTP method. */
  readonly method: string;
  /** Request path; the query string is dropped (it may carry secrets). */
  readonly path: string;
  /** The decision. */
  readonly decision: Decision;
}

/** Whether a decision is audited: denials always, allows when the resource asks. */
export function shouldAudit(policy: CompiledAuthorization | null, decision: Decision): boolean {
  return !decision.allowed || (policy?.auditAllowed ?? false);
}

/** Longest path written into an audit line. */
export const MAX_AUDIT_PATH_CHARS = 1024;

/** The fields of one audit record, without the time (a logger adds its own). */
export interface AuditRecord {
  /** Always `authz`, so audit lines can be picked out of a mixed log. */
  readonly type: "authz";
  /** The caller's SPIFFE id, or null. */
  readonly caller: string | null;
  /** The protected service. */
  readonly service: string;
  /** HTTP method (at most 32 characters). */
  readonly method: string;
  /** Path without query or fragment (at most {@linkcode MAX_AUDIT_PATH_CHARS}). */
  readonly path: string;
  /** `allow` or `deny`. */
  readonly decision: "allow" | "deny";
  /** The decision's reason. */
  readonly reason: string;
  /** The deciding rule, or null for defaults. */
  readonly rule: string | null;
}

/** The audit fields of an event: query dropped, method and path length-capped. */
export function auditRecord(ev: Omit<AuditEvent, "time">): AuditRecord {
  const q = ev.path.search(/[?#]/);
  const path = (q >= 0 ? ev.path.slice(0, q) : ev.path).slice(0, MAX_AUDIT_PATH_CHARS);
  return {
    type: "authz",
    caller: ev.caller,
    service: ev.service,
    method: ev.method.slice(0, 32),
    path,
    decision: ev.decision.allowed ? "allow" : "deny",
    reason: ev.decision.reason,
    rule: ev.decision.rule,
  };
}

/**
 * One JSON line: `{"time","type":"authz","caller","service","method","path","decision",
 * "reason","rule"}`. JSON encoding escapes control characters, so a hostile path cannot forge
 * a second line.
 */
export function auditLine(ev: AuditEvent): string {
  return JSON.stringify({ time: new Date(ev.time).toISOString(), ...auditRecord(ev) });
}
