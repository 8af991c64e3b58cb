/**
 * Parsing of the human units used in skein's YAML: durations ("250ms", "1m30s") and sizes
 * ("64KiB", "10MB").
 * @module
 */

const DURATION_UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** The longest duration skein accepts anywhere: 365 days, far past any sane timeout or TTL. */
export const MAX_DURATION_MS = 365 * 86_400_000;

/**
 * Parses a duration like "250ms", "5s", "1m30s" (or "100 ms", "1m 30s": spaces are allowed, as
 * in sizes such as "1 MB") into milliseconds; null when malformed.
 */
export function parseDuration(text: string): number | null {
  const s = text.trim();
  if (s === "0") return 0;
  // Each part is a decimal number followed by a unit; parts must be in descending unit order.
  const part = /\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)/y;
  let pos = 0;
  let total = 0;
  let lastUnit = Infinity;
  while (pos < s.length) {
    part.lastIndex = pos;
    const m = part.exec(s);
    if (!m) return null;
    const unitMs = DURATION_UNIT_MS[m[2]!]!;
    if (unitMs >= lastUnit) return null;
    lastUnit = unitMs;
    total += Number(m[1]) * unitMs;
    pos = part.lastIndex;
  }
  if (pos === 0 || !Number.isFinite(total) || total > MAX_DURATION_MS) return null;
  return Math.round(total);
}

/** Formats milliseconds as the shortest duration string that parses back to the same value. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  for (const [unit, size] of [["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

const SIZE_UNIT: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** Parses a size like "64KiB", "10MB" or "512" into bytes; null when malformed. */
export function parseSize(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!m) return null;
  const unit = SIZE_UNIT[m[2]!.toLowerCase()];
  if (unit === undefined) return null;
  const n = Number(m[1]) * unit;
  if (!Number.isSafeInteger(Math.round(n))) return null;
  return Math.round(n);
}
