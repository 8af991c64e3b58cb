/**
 * What every `skein ctl` verb shares: the common flags, the API caller and argument helpers.
 * @module
 */
import { stringify as toYaml } from "yaml";
import { didYouMean, RESOURCE_KINDS } from "../../config/mod.ts";
import { type FlagSpec, UsageError } from "../cli/args.ts";
import type { CommandIo } from "../cli/io.ts";

/** Control API used when neither `--control` nor `SKEIN_CONTROL` is given. */
export const DEFAULT_CONTROL_URL = "https://127.0.0.1:7400";
/** CA bundle used to trust an https control API when neither `--ca-file` nor `SKEIN_CA_FILE` is given. */
export const DEFAULT_CA_FILE = "/etc/skein/ca.pem";
/** Timeout of one API request made by ctl. */
export const CTL_REQUEST_TIMEOUT_MS = 10_000;
/** Timeout of each per-node health probe of `ctl status`. */
export const CTL_STATUS_PROBE_TIMEOUT_MS = 3_000;
/** Resources sent per `PUT /v1/resources` (the API's per-request limit). */
export const CTL_APPLY_BATCH = 100;

/** What `runCtl` needs from the process; `fetch` is injectable for tests. */
export interface CtlIo extends Pick<CommandIo, "stdout" | "stderr"> {
  /** The environment (`SKEIN_CONTROL`, `SKEIN_TOKEN`, `SKEIN_CA_FILE`). */
  env: Record<string, string | undefined>;
  /** HTTP client. @default globalThis.fetch */
  fetch?: (req: Request) => Promise<Response>;
}

/** Output formats of ctl. */
export type Output = "table" | "json" | "yaml";

/** Hosts a plain-http control URL may name: the token then never leaves the machine. */
export const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

/** Flags every verb takes. */
export const COMMON_FLAGS: FlagSpec[] = [
  {
    name: "control",
    value: true,
    help: "control API URL (default $SKEIN_CONTROL or " + DEFAULT_CONTROL_URL + ")",
  },
  {
    name: "token-file",
    value: true,
    help: "file holding the bearer token (default $SKEIN_TOKEN_FILE)",
  },
  {
    name: "token",
    value: true,
    help: "bearer token (default $SKEIN_TOKEN); other users can read a flag in the process list",
  },
  {
    name: "ca-file",
    value: true,
    help: "CA bundle that signed the API's certificate (default $SKEIN_CA_FILE or " +
      DEFAULT_CA_FILE + ")",
  },
  {
    name: "output",
    short: "o",
    value: true,
    help: "table | json | yaml",
    choices: ["table", "json", "yaml"],
  },
  {
    name: "stale",
    value: false,
    help: "read from the contacted node without a linearizable barrier",
  },
];
/** `-f FILE` of apply and diff. */
export const FILE_FLAG: FlagSpec = {
  name: "file",
  short: "f",
  value: true,
  help: "resource YAML file",
};

/** One verb of ctl. */
export interface Verb {
  /** Command lines shown under EXAMPLES in the verb's help. */
  examples?: readonly string[];
  /** Checks the positional arguments before any connection is set up; throws UsageError. */
  checkArgs?(args: string[]): void;
  usage: string;
  summary: string;
  flags: FlagSpec[];
  run(ctx: CtlContext, args: string[]): Promise<number>;
}

/** Thrown for runtime failures; printed as `error: …` with exit code 1. */
export class CtlError extends Error {}

/** What a verb runs with: the parsed flags, output format and an API caller. */
export class CtlContext {
  constructor(
    readonly io: CtlIo,
    readonly base: string,
    readonly token: string | undefined,
    readonly output: Output,
    readonly flags: Map<string, string>,
  ) {}

  /** Prints a line. */
  out(text: string): void {
    this.io.stdout(text.endsWith("\n") ? text : text + "\n");
  }

  /** Prints data as json/yaml, or calls `table` for the table format. */
  emit(data: unknown, table: () => string): void {
    if (this.output === "json") this.out(JSON.stringify(data, null, 2));
    else if (this.output === "yaml") this.out(toYaml(data));
    else this.out(table());
  }

  /** Adds `stale=true` when `--stale` was given. */
  query(path: string): string {
    if (!this.flags.has("stale")) return path;
    return path + (path.includes("?") ? "&" : "?") + "stale=true";
  }

  /** Calls the API; returns status and JSON body, or throws CtlError when unreachable. */
  async call(
    method: string,
    path: string,
    body?: unknown,
    opts: { base?: string; timeoutMs?: number; allow404?: boolean } = {},
  ): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
    const base = (opts.base ?? this.base).replace(/\/+$/, "");
    const headers = new Headers({ accept: "application/json" });
    if (this.token) headers.set("authorization", `Bearer ${this.token}`);
    if (body !== undefined) headers.set("content-type", "application/json");
    const doFetch = this.io.fetch ?? ((r: Request) => fetch(r));
    let res: Response;
    let text: string;
    try {
      res = await doFetch(
        new Request(base + path, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(opts.timeoutMs ?? CTL_REQUEST_TIMEOUT_MS),
        }),
      );
      text = await res.text();
    } catch (e) {
      const why = e instanceof DOMException && e.name === "TimeoutError"
        ? `no answer within ${opts.timeoutMs ?? CTL_REQUEST_TIMEOUT_MS} ms`
        : (e as Error).message;
      throw new CtlError(`cannot reach the control API at ${base}: ${why}`);
    }
    let json: Record<string, unknown> = {};
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      throw new CtlError(`${method} ${base}${path}: HTTP ${res.status} with a non-JSON body`);
    }
    if (res.ok || (opts.allow404 && res.status === 404)) {
      return { status: res.status, json, headers: res.headers };
    }
    const err = (json.error ?? {}) as {
      code?: string;
      message?: string;
      details?: { issues?: { path: string; message: string }[] };
    };
    let msg = `${method} ${path}: ${res.status} ${err.code ?? "error"}: ${err.message ?? text}`;
    for (const i of err.details?.issues?.slice(1) ?? []) {
      msg += `\n  ${i.path || "(body)"}: ${i.message}`;
    }
    throw new CtlError(msg);
  }
}

/** The canonical resource kind for `raw`; a usage error listing the kinds otherwise. */
export function resourceKind(raw: string): string {
  const k = RESOURCE_KINDS.find((x) => x.toLowerCase() === raw.toLowerCase());
  if (k) return k;
  const hint = didYouMean(raw, RESOURCE_KINDS);
  throw new UsageError(
    `unknown resource kind ${JSON.stringify(raw)}${hint ? `; did you mean ${hint}?` : ""} (kinds: ${
      RESOURCE_KINDS.join(", ")
    })`,
  );
}

/** Checks the number of positional arguments; a usage error naming the usage otherwise. */
export function arity(args: string[], min: number, max: number, usage: string): void {
  if (args.length < min || args.length > max) {
    throw new UsageError(
      `${args.length < min ? "missing" : "unexpected"} argument(s); usage: ${usage}`,
    );
  }
}

/** Encodes one path segment. */
export const enc = encodeURIComponent;
