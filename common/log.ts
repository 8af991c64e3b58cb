/**
 * Structured logging: one line per event, logfmt or JSON, with secrets redacted.
 *
 * Every module takes a `Logger` from its caller; only `cmd/` decides where lines go.
 * @module
 */

/** Severity of a log event, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Output encoding of log lines. */
export type LogFormat = "logfmt" | "json";

/** Field values a log event may carry. */
export type LogValue = string | number | boolean | null | undefined | bigint | Error;

/** Extra key/value pairs attached to a log event. */
export type LogFields = Record<string, LogValue>;

/** The logging interface every module receives. */
export interface Logger {
  /** Logs a debug event. */
  debug(msg: string, fields?: LogFields): void;
  /** Logs an info event. */
  info(msg: string, fields?: LogFields): void;
  /** Logs a warning. */
  warn(msg: string, fields?: LogFields): void;
  /** Logs an error. */
  error(msg: string, fields?: LogFields): void;
  /** Returns a logger that adds `fields` to every event. */
  with(fields: LogFields): Logger;
  /** Whether events at `level` are written at all (to skip building costly fields). */
  enabled(level: LogLevel): boolean;
}

const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Keys whose values are never written, whatever the caller passes. */
const SECRET_KEY = /(token|secret|password|passwd|private|authorization|cookie|key$|^key|_key)/i;

/** Values that look like bearer tokens or PEM keys are redacted even under innocent keys. */
const SECRET_VALUE =
  /(Bearer\s+\S+|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)|skn_[A-Za-z0-9_-]{8,})/g;

/** The placeholder written instead of a secret. */
export const REDACTED = "[redacted]";

/** Options for {@linkcode createLogger}. */
export interface LoggerOptions {
  /** Minimum level written. @default "info" */
  level?: LogLevel;
  /** Line encoding. @default "logfmt" */
  format?: LogFormat;
  /** Where finished lines go (without trailing newline). @default stderr */
  sink?: (line: string) => void;
  /** Clock for timestamps, injectable for tests. @default Date.now */
  now?: () => number;
  /**
   * Shared, changeable settings: when given they win over `level` and `format`, and every
   * logger derived with `with` follows a change (a configuration reload).
   */
  settings?: LogSettingsCell;
}

/** Level and format that a running process may change (SIGHUP reload). */
export interface LogSettingsCell {
  level: LogLevel;
  format: LogFormat;
}

/** Returns whether a string names a log level. */
export function isLogLevel(s: string): s is LogLevel {
  return s in LEVEL_RANK;
}

/** Redacts a single field value given its key. */
export function redact(key: string, value: LogValue): LogValue {
  if (value === null || value === undefined) return value;
  if (SECRET_KEY.test(key) && !/^(keys|key_count)$/i.test(key)) return REDACTED;
  if (typeof value === "string") return value.replace(SECRET_VALUE, REDACTED);
  if (value instanceof Error) {
    return value.message.replace(SECRET_VALUE, REDACTED);
  }
  return value;
}

function _stringify(v: LogValue): string {
  if (v === null || v === undefined) return "";
  if (v instanceof Error) return v.message;
  return String(v);
}

function _hasControlChar(v: string): boolean {
  for (let i = 0; i < v.length; i++) if (v.charCodeAt(i) < 0x20) return true;
  return false;
}

function _logfmtValue(v: string): string {
  if (v === "") return '""';
  if (/[\s"=\\]/.test(v) || _hasControlChar(v)) {
    return JSON.stringify(v);
  }
  return v;
}

/** Encodes one event as a logfmt line. */
export function formatLogfmt(
  ts: number,
  level: LogLevel,
  msg: string,
  fields: LogFields,
): string {
  const parts = [
    `ts=${new Date(ts).toISOString()}`,
    `level=${level}`,
    `msg=${_logfmtValue(msg.replace(SECRET_VALUE, REDACTED))}`,
  ];
  for (const [k, raw] of Object.entries(fields)) {
    if (raw === undefined) continue;
    parts.push(`${k}=${_logfmtValue(_stringify(redact(k, raw)))}`);
  }
  return parts.join(" ");
}

/** Encodes one event as a JSON line. */
export function formatJson(ts: number, level: LogLevel, msg: string, fields: LogFields): string {
  const out: Record<string, unknown> = {
    ts: new Date(ts).toISOString(),
    level,
    msg: msg.replace(SECRET_VALUE, REDACTED),
  };
  for (const [k, raw] of Object.entries(fields)) {
    if (raw === undefined) continue;
    const v = redact(k, raw);
    out[k] = v instanceof Error ? v.message : typeof v === "bigint" ? v.toString() : v;
  }
  return JSON.stringify(out);
}

const _encoder = new TextEncoder();

function _stderrSink(line: string): void {
  // Synchronous write keeps lines whole and ordered even when the process is about to exit.
  Deno.stderr.writeSync(_encoder.encode(line + "\n"));
}

/** Creates a logger writing to stderr (or the given sink). */
export function createLogger(opts: LoggerOptions = {}, base: LogFields = {}): Logger {
  const cell = opts.settings;
  const fixedMin = LEVEL_RANK[opts.level ?? "info"];
  const fixedFmt = (opts.format ?? "logfmt") === "json" ? formatJson : formatLogfmt;
  const minRank = () => cell ? LEVEL_RANK[cell.level] : fixedMin;
  const sink = opts.sink ?? _stderrSink;
  const now = opts.now ?? Date.now;
  const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (LEVEL_RANK[level] < minRank()) return;
    const fmt = cell ? (cell.format === "json" ? formatJson : formatLogfmt) : fixedFmt;
    sink(fmt(now(), level, msg, fields ? { ...base, ...fields } : base));
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    with: (f) => createLogger(opts, { ...base, ...f }),
    enabled: (level) => LEVEL_RANK[level] >= minRank(),
  };
}

/** A logger that drops everything; for tests and library defaults. */
export const nullLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  with: () => nullLogger,
  enabled: () => false,
};

/** A logger that records events in memory, for assertions in tests. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const log = createLogger({ level: "debug", sink: (l) => lines.push(l), now: () => 0 });
  return Object.assign(log, { lines });
}
