/**
 * Loads YAML configuration and resource files, validates them with zod, and reports every
 * problem as `file:line:col: field.path: expected …, got …`.
 * @module
 */
import {
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseAllDocuments,
  parseDocument,
} from "yaml";
import type { Document, Node as YamlNode } from "yaml";
import type { z } from "zod";
import { show } from "./fields.ts";
import { didYouMean } from "./suggest.ts";
import { type Resource, WritableResourceSchema } from "./resource_schema.ts";

/** Configuration files larger than this are refused before parsing: no sane config is 1 MiB. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Alias expansions allowed per document, against "billion laughs" bombs. */
export const MAX_ALIAS_COUNT = 100;
/** Documents allowed in one resource file. */
export const MAX_RESOURCE_DOCUMENTS = 1000;

/** One problem found in a configuration source. */
export interface ConfigIssue {
  /** File name as given, or `env SKEIN_X` for an environment override. */
  file: string;
  /** 1-based line, 0 when unknown. */
  line: number;
  /** 1-based column, 0 when unknown. */
  col: number;
  /** Dotted field path like `raft_tuning.election_timeout` or `peers[1]`; "" for the file. */
  path: string;
  /** What was expected and what was found. */
  message: string;
}

/** Formats one issue the way operators read it. */
export function formatIssue(i: ConfigIssue): string {
  const where = i.line > 0 ? `${i.file}:${i.line}:${i.col}` : i.file;
  return i.path ? `${where}: ${i.path}: ${i.message}` : `${where}: ${i.message}`;
}

/** Thrown when a configuration source is invalid; carries every issue found. */
export class ConfigError extends Error {
  /** The issues, in file order. */
  readonly issues: ConfigIssue[];
  /** Creates the error from its issues. */
  constructor(issues: ConfigIssue[]) {
    super(issues.map(formatIssue).join("\n"));
    this.name = "ConfigError";
    this.issues = issues;
  }
}

/** Renders a zod/YAML path as `a.b[2].c`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

/** Decodes file bytes as UTF-8 text, refusing binary and oversize input with a clear issue. */
export function decodeConfigBytes(bytes: Uint8Array, file: string): string {
  if (bytes.length > MAX_CONFIG_BYTES) {
    throw new ConfigError([{
      file,
      line: 0,
      col: 0,
      path: "",
      message: `file is ${bytes.length} bytes, larger than the ${MAX_CONFIG_BYTES} byte limit`,
    }]);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ConfigError([{
      file,
      line: 0,
      col: 0,
      path: "",
      message: "file is not UTF-8 text (is it a binary file?)",
    }]);
  }
  const nul = text.indexOf("\0");
  if (nul >= 0) {
    const lc = _lineCol(text, nul);
    throw new ConfigError([{
      file,
      ...lc,
      path: "",
      message: "file contains a NUL byte (is it a binary file?)",
    }]);
  }
  return text;
}

function _lineCol(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let last = -1;
  for (let i = 0; i < offset; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      last = i;
    }
  }
  return { line, col: offset - last };
}

/** Reads a file with the size limit applied before the whole file is read into memory. */
export async function readConfigFile(path: string): Promise<string> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "file not found" : `cannot read file (${e})`;
    throw new ConfigError([{ file: path, line: 0, col: 0, path: "", message: why }]);
  }
  if (!info.isFile) {
    throw new ConfigError([{
      file: path,
      line: 0,
      col: 0,
      path: "",
      message: "not a regular file",
    }]);
  }
  if (info.size > MAX_CONFIG_BYTES) {
    throw new ConfigError([{
      file: path,
      line: 0,
      col: 0,
      path: "",
      message: `file is ${info.size} bytes, larger than the ${MAX_CONFIG_BYTES} byte limit`,
    }]);
  }
  return decodeConfigBytes(await Deno.readFile(path), path);
}

/**
 * Variables of `skein ctl` (and the CLI's own logging), never configuration overrides: an
 * operator's shell exports them for ctl, and a daemon started from that shell must not pick
 * them up as its `control`, `ca_file` or `token_file`.
 */
export const CLI_ENV_VARS: ReadonlySet<string> = new Set([
  "SKEIN_CONTROL",
  "SKEIN_CA_FILE",
  "SKEIN_TOKEN",
  "SKEIN_TOKEN_FILE",
  "SKEIN_LOG_LEVEL",
  "SKEIN_LOG_FORMAT",
]);

/** An override from the environment, applied on top of the YAML before validation. */
interface EnvOverride {
  variable: string;
  path: (string | number)[];
  value: unknown;
}

/**
 * Collects `SKEIN_*` overrides: `SKEIN_API=0.0.0.0:7500` sets `api`, and a double underscore
 * descends, so `SKEIN_RAFT_TUNING__HEARTBEAT=50ms` sets `raft_tuning.heartbeat`. Values are
 * parsed as YAML scalars/flow collections, so `SKEIN_PEERS=[a=1.2.3.4:7401]` works.
 * Variables in `ignore` (by default the CLI's own, {@linkcode CLI_ENV_VARS}) are skipped.
 */
export function envOverrides(
  env: Record<string, string>,
  ignore: ReadonlySet<string> = CLI_ENV_VARS,
): EnvOverride[] {
  const out: EnvOverride[] = [];
  for (const [k, v] of Object.entries(env).sort(([a], [b]) => a.localeCompare(b))) {
    if (!k.startsWith("SKEIN_") || ignore.has(k)) continue;
    const path = k.slice(6).toLowerCase().split("__").filter((s) => s.length > 0);
    if (path.length === 0) continue;
    let value: unknown = v;
    try {
      const doc = parseDocument(v, { uniqueKeys: true });
      if (doc.errors.length === 0) value = doc.toJS({ maxAliasCount: 0 });
    } catch {
      value = v;
    }
    out.push({ variable: k, path, value });
  }
  return out;
}

function _setIn(root: Record<string, unknown>, path: (string | number)[], value: unknown): void {
  let cur: Record<string, unknown> = root;
  for (let i = 0; i < path.length - 1; i++) {
    const k = String(path[i]);
    const next = cur[k];
    if (next === null || typeof next !== "object" || Array.isArray(next)) {
      cur[k] = {};
    }
    cur = cur[k] as Record<string, unknown>;
  }
  cur[String(path[path.length - 1])] = value;
}

/** Options for {@linkcode parseConfigText}. */
export interface ParseOptions {
  /** Environment for `SKEIN_*` overrides. @default no overrides */
  env?: Record<string, string>;
  /** Environment variables that are not config overrides. @default CLI_ENV_VARS */
  ignoreEnv?: ReadonlySet<string>;
}

/** Parses and validates one YAML document of configuration; throws ConfigError. */
export function parseConfigText<S extends z.ZodType>(
  text: string,
  file: string,
  schema: S,
  opts: ParseOptions = {},
): z.infer<S> {
  const lc = new LineCounter();
  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
  } catch (e) {
    throw new ConfigError([{
      file,
      line: 0,
      col: 0,
      path: "",
      message: `cannot parse YAML: ${e}`,
    }]);
  }
  const raw = _toJs(doc, lc, file);
  if (raw === null || raw === undefined) {
    throw new ConfigError([{
      file,
      line: 1,
      col: 1,
      path: "",
      message: "file is empty; expected a mapping of configuration keys",
    }]);
  }
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError([{
      file,
      line: 1,
      col: 1,
      path: "",
      message: `expected a mapping of configuration keys at the top, got ${show(raw)}`,
    }]);
  }
  const overridden = new Map<string, string>();
  // Only variables naming a key of this schema are overrides; others (SKEIN_CONTROL for ctl,
  // SKEIN_LOG_LEVEL for the CLI) belong to someone else.
  const topKeys = new Set(knownKeys(schema, raw, []));
  for (const o of envOverrides(opts.env ?? {}, opts.ignoreEnv)) {
    if (!topKeys.has(String(o.path[0]))) continue;
    _setIn(raw as Record<string, unknown>, o.path, o.value);
    overridden.set(formatPath(o.path), o.variable);
  }
  return _validate(schema, raw, doc, lc, file, overridden);
}

function _toJs(doc: Document.Parsed, lc: LineCounter, file: string): unknown {
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => {
      const pos = e.linePos?.[0] ?? lc.linePos(e.pos[0]);
      return {
        file,
        line: pos.line,
        col: pos.col,
        path: "",
        message: `invalid YAML: ${e.message.split("\n")[0]}`,
      };
    }));
  }
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const why = /alias/i.test(msg)
      ? `too many alias expansions (more than ${MAX_ALIAS_COUNT}); refusing a possible "billion laughs" document`
      : `cannot read YAML: ${msg}`;
    const start = doc.contents?.range?.[0] ?? 0;
    const pos = lc.linePos(start);
    throw new ConfigError([{ file, line: pos.line, col: pos.col, path: "", message: why }]);
  }
}

function _validate<S extends z.ZodType>(
  schema: S,
  raw: unknown,
  doc: Document.Parsed,
  lc: LineCounter,
  file: string,
  overridden: Map<string, string> = new Map(),
): z.infer<S> {
  const result = schema.safeParse(raw);
  if (result.success) return Object.freeze(result.data) as z.infer<S>;
  const issues: ConfigIssue[] = [];
  for (const issue of result.error.issues) {
    const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
    if (issue.code === "unrecognized_keys") {
      const known = knownKeys(schema, raw, path);
      for (const key of issue.keys) {
        const keyPath = [...path, key];
        const pos = _keyPosition(doc, lc, path, key);
        const hint = didYouMean(key, known);
        issues.push({
          file,
          ...pos,
          path: formatPath(keyPath),
          message: `unknown key${hint ? `; did you mean "${hint}"?` : ""}${
            known.length > 0 && !hint ? ` (expected one of: ${known.join(", ")})` : ""
          }`,
        });
      }
      continue;
    }
    const env = _envFor(overridden, path);
    const pos = env ? { line: 0, col: 0 } : _valuePosition(doc, lc, path);
    issues.push({
      file: env ? `env ${env}` : file,
      ...pos,
      path: formatPath(path),
      message: _describe(issue, _getIn(raw, path)),
    });
  }
  issues.sort((a, b) => a.line - b.line || a.col - b.col);
  throw new ConfigError(issues);
}

function _envFor(overridden: Map<string, string>, path: (string | number)[]): string | undefined {
  for (let n = path.length; n > 0; n--) {
    const v = overridden.get(formatPath(path.slice(0, n)));
    if (v) return v;
  }
  return undefined;
}

function _describe(issue: z.core.$ZodIssue, actual: unknown): string {
  switch (issue.code) {
    case "invalid_type":
      if (actual === undefined) return `missing required key (expected ${issue.expected})`;
      return `expected ${issue.expected}, got ${show(actual)}`;
    case "invalid_value":
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, got ${
        show(actual)
      }`;
    case "invalid_union": {
      const m = /Expected (.*?),? got/i.exec(issue.message) ??
        /Expected (.*)$/i.exec(issue.message);
      if (m) {
        return `expected one of ${m[1]!.replaceAll("'", "").replaceAll(" | ", ", ")}, got ${
          show(actual)
        }`;
      }
      return `${issue.message}, got ${show(actual)}`;
    }
    case "too_small":
    case "too_big":
      return `${issue.message.replace(/^Too (small|big): expected /, "expected ")}, got ${
        Array.isArray(actual) ? `${actual.length} items` : show(actual)
      }`;
    case "custom":
      return issue.message;
    default:
      return issue.message.startsWith("expected")
        ? issue.message
        : `${issue.message}, got ${show(actual)}`;
  }
}

function _getIn(v: unknown, path: (string | number)[]): unknown {
  let cur = v;
  for (const p of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string | number, unknown>)[p];
  }
  return cur;
}

/** Position of the value at `path`, or of its nearest existing ancestor. */
function _valuePosition(
  doc: Document.Parsed,
  lc: LineCounter,
  path: (string | number)[],
): { line: number; col: number } {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    const range = (node as YamlNode | undefined)?.range;
    if (range) return lc.linePos(range[0]);
  }
  return { line: 1, col: 1 };
}

/** Position of the key `key` inside the mapping at `path`. */
function _keyPosition(
  doc: Document.Parsed,
  lc: LineCounter,
  path: (string | number)[],
  key: string,
): { line: number; col: number } {
  const parent = path.length === 0 ? doc.contents : doc.getIn(path, true);
  if (isMap(parent)) {
    for (const item of parent.items) {
      if (isPair(item) && isScalar(item.key) && String(item.key.value) === key && item.key.range) {
        return lc.linePos(item.key.range[0]);
      }
    }
  }
  return _valuePosition(doc, lc, path);
}

type _Def = {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  element?: z.ZodType;
  in?: z.ZodType;
  options?: z.ZodType[];
};

function _def(s: z.ZodType): _Def {
  return (s as unknown as { _zod: { def: _Def } })._zod.def;
}

/** The keys the schema allows at `path`, for did-you-mean on unknown keys. */
export function knownKeys(schema: z.ZodType, value: unknown, path: (string | number)[]): string[] {
  let cur: z.ZodType | undefined = schema;
  let val = value;
  for (let i = 0; i <= path.length && cur; i++) {
    // Unwrap wrappers until we reach an object, array or union.
    for (let guard = 0; guard < 16 && cur; guard++) {
      const d: _Def = _def(cur);
      if (d.innerType) cur = d.innerType;
      else if (d.type === "pipe" && d.in) cur = d.in;
      else if (d.type === "union" && d.options) {
        const kind = val && typeof val === "object" ? (val as { kind?: unknown }).kind : undefined;
        cur = d.options.find((o) => {
          const shape = _def(o).shape;
          const lit = shape?.kind
            ? _def(shape.kind) as unknown as { values?: unknown[] }
            : undefined;
          return lit?.values?.includes(kind);
        }) ?? d.options[0];
      } else break;
    }
    if (!cur) return [];
    if (i === path.length) break;
    const d = _def(cur);
    const step = path[i]!;
    if (d.type === "object" && d.shape && typeof step === "string") cur = d.shape[step];
    else if (d.type === "array" && d.element) cur = d.element;
    else return [];
    val = _getIn(val, [step]);
  }
  const d = cur ? _def(cur) : undefined;
  return d?.type === "object" && d.shape ? Object.keys(d.shape) : [];
}

/** Parses a multi-document resource file (`---` separated); throws ConfigError listing all issues. */
export function parseResourceText(text: string, file: string): Resource[] {
  const lc = new LineCounter();
  let docs: Document.Parsed[];
  try {
    const parsed = parseAllDocuments(text, { lineCounter: lc, uniqueKeys: true });
    docs = Array.isArray(parsed) ? parsed : [];
  } catch (e) {
    throw new ConfigError([{
      file,
      line: 0,
      col: 0,
      path: "",
      message: `cannot parse YAML: ${e}`,
    }]);
  }
  if (docs.length > MAX_RESOURCE_DOCUMENTS) {
    throw new ConfigError([{
      file,
      line: 0,
      col: 0,
      path: "",
      message:
        `file has ${docs.length} documents, more than the limit of ${MAX_RESOURCE_DOCUMENTS}`,
    }]);
  }
  const out: Resource[] = [];
  const issues: ConfigIssue[] = [];
  for (const doc of docs) {
    try {
      const raw = _toJs(doc, lc, file);
      if (raw === null || raw === undefined) continue;
      if (typeof raw !== "object" || Array.isArray(raw) || !("kind" in raw)) {
        const pos = lc.linePos(doc.contents?.range?.[0] ?? 0);
        issues.push({
          file,
          ...pos,
          path: "kind",
          message:
            "expected a resource with kind: Policy, Route, Authorization, RateLimit or ExternalService",
        });
        continue;
      }
      out.push(_validate(WritableResourceSchema, raw, doc, lc, file));
    } catch (e) {
      if (e instanceof ConfigError) issues.push(...e.issues);
      else throw e;
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
  if (out.length === 0) {
    throw new ConfigError([{
      file,
      line: 1,
      col: 1,
      path: "",
      message: "file holds no resources",
    }]);
  }
  return out;
}

/** Reads and validates a resource file. */
export async function loadResourceFile(path: string): Promise<Resource[]> {
  return parseResourceText(await readConfigFile(path), path);
}

/** Reads and validates one configuration file against `schema`, with env overrides. */
export async function loadConfigFile<S extends z.ZodType>(
  path: string,
  schema: S,
  opts: ParseOptions = {},
): Promise<z.infer<S>> {
  return parseConfigText(await readConfigFile(path), path, schema, opts);
}

/** Returns whether a YAML source looks like resources (has a top-level `kind:`). */
export function looksLikeResources(text: string): boolean {
  return /^kind\s*:/m.test(text);
}

// Re-exported for callers that need to walk YAML nodes themselves.
export { isMap, isSeq };

/**
 * The line and column of `path` inside the `index`-th resource of a resource file (documents
 * holding nothing are not counted, as in {@linkcode parseResourceText}).
 */
export function resourcePosition(
  text: string,
  index: number,
  path: (string | number)[],
): { line: number; col: number } {
  const lc = new LineCounter();
  const parsed = parseAllDocuments(text, { lineCounter: lc });
  const docs = (Array.isArray(parsed) ? parsed : []).filter((d) =>
    d.contents !== null && d.contents !== undefined
  );
  const doc = docs[index];
  return doc === undefined ? { line: 1, col: 1 } : _valuePosition(doc, lc, path);
}
