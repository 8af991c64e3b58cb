/**
 * W3C trace context (`traceparent`) and B3 (`x-b3-*`, `b3`) propagation, and the sampling
 * decision: pure functions over header values, so the proxy's hot path pays for a trace only
 * when a request is sampled.
 * @module
 */

/** How often a proxy starts a trace for a request that arrived without one. */
export type Sampling = "always" | "never" | number;

/** Sampling of requests arriving without a trace when `telemetry.sampling` is not set. */
export const DEFAULT_SAMPLING = 0.01;

/** A parent span context read from the request's headers. */
export interface ParentContext {
  /** 32 lower-case hex digits. */
  traceId: string;
  /** 16 lower-case hex digits: the caller's span. */
  spanId: string;
  /** Whether the caller sampled this trace. */
  sampled: boolean;
  /** The `tracestate` header, passed on unchanged. */
  traceState: string | null;
}

/** Reads one request header by lower-case name; null when absent. */
export type HeaderLookup = (name: string) => string | null;

const _ZERO_TRACE = "00000000000000000000000000000000";
const _ZERO_SPAN = "0000000000000000";

/** The value of hex digit `c` (a char code), or -1. */
function _hex(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/** Whether `s[from, to)` is lower-case hex. */
function _isHex(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (_hex(s.charCodeAt(i)) < 0) return false;
  return true;
}

/**
 * The sampled flag of a `traceparent` value without allocating: 1 sampled, 0 not sampled,
 * -1 when the value is not a valid version-00 (or later-version) traceparent.
 */
export function traceparentSampled(v: string): number {
  // version "-" trace-id "-" parent-id "-" flags; later versions may append "-..." fields.
  if (v.length < 55 || (v.length > 55 && v.charCodeAt(55) !== 45)) return -1;
  if (v.charCodeAt(2) !== 45 || v.charCodeAt(35) !== 45 || v.charCodeAt(52) !== 45) return -1;
  if (!_isHex(v, 0, 2) || v.startsWith("ff")) return -1;
  if (v.startsWith("00") && v.length !== 55) return -1;
  if (!_isHex(v, 3, 35) || !_isHex(v, 36, 52) || !_isHex(v, 53, 55)) return -1;
  if (v.startsWith(_ZERO_TRACE, 3) || v.startsWith(_ZERO_SPAN, 36)) return -1;
  return _hex(v.charCodeAt(54)) & 1;
}

/** The parent context of a valid `traceparent` value, else null. */
export function parseTraceparent(v: string, traceState: string | null): ParentContext | null {
  const sampled = traceparentSampled(v);
  if (sampled < 0) return null;
  return {
    traceId: v.slice(3, 35),
    spanId: v.slice(36, 52),
    sampled: sampled === 1,
    traceState,
  };
}

/** A B3 trace id (16 or 32 hex digits) as 32 digits, else null. */
function _b3TraceId(v: string): string | null {
  const id = v.trim().toLowerCase();
  if ((id.length !== 16 && id.length !== 32) || !_isHex(id, 0, id.length)) return null;
  const full = id.length === 16 ? "0000000000000000" + id : id;
  return full === _ZERO_TRACE ? null : full;
}

/** A B3 span id (16 hex digits), else null. */
function _b3SpanId(v: string): string | null {
  const id = v.trim().toLowerCase();
  return id.length === 16 && _isHex(id, 0, 16) && id !== _ZERO_SPAN ? id : null;
}

/**
 * The parent context carried by B3 headers (multi-header `x-b3-*` or single `b3`), else
 * null. `sampled` is null when B3 defers the decision (no sampling state given).
 */
export function parseB3(get: HeaderLookup):
  | (Omit<ParentContext, "sampled"> & {
    sampled: boolean | null;
  })
  | null {
  const single = get("b3");
  if (single !== null) {
    const parts = single.split("-");
    if (parts.length < 2) return null;
    const traceId = _b3TraceId(parts[0]!);
    const spanId = _b3SpanId(parts[1]!);
    if (traceId === null || spanId === null) return null;
    const s = parts[2];
    return {
      traceId,
      spanId,
      sampled: s === undefined ? null : s === "1" || s === "d",
      traceState: null,
    };
  }
  const t = get("x-b3-traceid");
  const sp = get("x-b3-spanid");
  if (t === null || sp === null) return null;
  const traceId = _b3TraceId(t);
  const spanId = _b3SpanId(sp);
  if (traceId === null || spanId === null) return null;
  const flags = get("x-b3-flags");
  const s = get("x-b3-sampled");
  const sampled = flags?.trim() === "1"
    ? true
    : s === null
    ? null
    : s.trim() === "1" || s.trim().toLowerCase() === "true";
  return { traceId, spanId, sampled, traceState: null };
}

/** Whether a new root trace is sampled under `sampling`, given a uniform `random()` in [0, 1). */
export function sampleRoot(sampling: Sampling, random: () => number): boolean {
  if (sampling === "always") return true;
  if (sampling === "never") return false;
  return sampling > 0 && random() < sampling;
}

/** The `traceparent` value for span `spanId` of trace `traceId`, sampled. */
export function formatTraceparent(traceId: string, spanId: string): string {
  return `00-${traceId}-${spanId}-01`;
}
