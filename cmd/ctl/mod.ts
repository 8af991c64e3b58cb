/**
 * `skein ctl`: the operator CLI against the control API (SPEC sections 1, 2 and 4). Each verb
 * group lives in its own module; this one parses the common flags and dispatches.
 *
 * Exit codes: 0 ok, 1 runtime failure (control unreachable, request refused), 2 bad usage or
 * an invalid resource file.
 * @module
 */
import { ConfigError, didYouMean } from "../../config/mod.ts";
import { flagRow, HELP_WIDTH, wrapText } from "../cli/help_text.ts";
import { formatHelp, parseArgs, type ParsedArgs, UsageError } from "../cli/args.ts";
import { ControlHttp, readCaBundle } from "../../common/tls/control_https.ts";
import {
  COMMON_FLAGS,
  CtlContext,
  CtlError,
  type CtlIo,
  DEFAULT_CA_FILE,
  DEFAULT_CONTROL_URL,
  LOOPBACK_HOSTS,
  type Output,
  type Verb,
} from "./context.ts";
import { membersVerb, statusVerb } from "./cluster.ts";
import { servicesVerb } from "./services.ts";
import {
  applyVerb,
  deleteVerb,
  diffVerb,
  getVerb,
  historyVerb,
  rollbackVerb,
} from "./resources.ts";
import { caVerb } from "./ca.ts";
import { tokensVerb } from "./tokens.ts";
import { checkVerb } from "./check.ts";
import { instancesVerb } from "./instances.ts";
import { watchVerb } from "./watch.ts";
import { dashboardVerb } from "./dashboard.ts";

export {
  CTL_APPLY_BATCH,
  CTL_REQUEST_TIMEOUT_MS,
  CTL_STATUS_PROBE_TIMEOUT_MS,
  type CtlIo,
  DEFAULT_CA_FILE,
  DEFAULT_CONTROL_URL,
} from "./context.ts";

const VERBS: Record<string, Verb> = {
  check: checkVerb,
  status: statusVerb,
  members: membersVerb,
  services: servicesVerb,
  instances: instancesVerb,
  watch: watchVerb,
  get: getVerb,
  apply: applyVerb,
  delete: deleteVerb,
  diff: diffVerb,
  history: historyVerb,
  rollback: rollbackVerb,
  ca: caVerb,
  tokens: tokensVerb,
  dashboard: dashboardVerb,
};

/** ctl's verbs with their flags, for shell completion. */
export function ctlVerbs(): { name: string; flags: Verb["flags"] }[] {
  return Object.entries(VERBS).map(([name, v]) => ({ name, flags: v.flags }));
}

/** Flags every ctl verb takes, for shell completion. */
export const CTL_COMMON_FLAGS = COMMON_FLAGS;

/** The usage line of `skein ctl`: the token from a file, never a flag others can read. */
export const CTL_USAGE =
  "skein ctl <verb> [--control URL] [--token-file FILE] [--ca-file FILE] [-o table|json|yaml]";

function _generalHelp(): string {
  const rows = Object.values(VERBS).flatMap((v) => [
    ...wrapText(v.usage.replace("skein ctl ", ""), "  ", HELP_WIDTH, "      "),
    ...wrapText(v.summary, "        "),
  ]);
  const flags = COMMON_FLAGS.map((f) =>
    flagRow(`${f.short ? `-${f.short}, ` : "    "}--${f.name}${f.value ? " VALUE" : ""}`, f.help)
  );
  return `usage: ${CTL_USAGE}\n\nverbs:\n${rows.join("\n")}\n\nflags:\n${
    flags.join("\n")
  }\n\n\`skein ctl <verb> --help\` shows the help of one verb.\n`;
}

/** Runs `skein ctl` with `args` (the words after `ctl`); returns the exit code. */
export async function runCtl(args: string[], io: CtlIo): Promise<number> {
  const verbName = args.find((a) => !a.startsWith("-"));
  if (verbName === undefined) {
    if (args.includes("--help") || args.includes("-h")) {
      io.stdout(_generalHelp());
      return 0;
    }
    io.stderr(`error: missing verb\n\n${_generalHelp()}`);
    return 2;
  }
  const verb = Object.hasOwn(VERBS, verbName) ? VERBS[verbName] : undefined;
  if (!verb) {
    const hint = didYouMean(verbName, Object.keys(VERBS));
    io.stderr(
      `error: unknown verb ${JSON.stringify(verbName)}${hint ? `; did you mean ${hint}?` : ""}\n` +
        `verbs: ${Object.keys(VERBS).join(", ")}\n`,
    );
    return 2;
  }
  const rest = [...args];
  rest.splice(rest.indexOf(verbName), 1);
  let parsed: ParsedArgs;
  try {
    parsed = parseArgs(rest, [...COMMON_FLAGS, ...verb.flags]);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`error: ${e.message}\nusage: ${verb.usage}\n`);
      return 2;
    }
    throw e;
  }
  if (parsed.flags.has("help")) {
    io.stdout(
      formatHelp(verb.usage, verb.summary, [...verb.flags, ...COMMON_FLAGS], verb.examples),
    );
    return 0;
  }
  try {
    verb.checkArgs?.(parsed.positional);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`error: ${e.message}\nusage: ${verb.usage}\n`);
      return 2;
    }
    throw e;
  }
  const base = parsed.flags.get("control") ?? io.env.SKEIN_CONTROL ?? DEFAULT_CONTROL_URL;
  let url: URL;
  try {
    url = new URL(base);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("not http(s)");
  } catch {
    io.stderr(
      `error: --control expects a URL like ${DEFAULT_CONTROL_URL}, got ${JSON.stringify(base)}\n`,
    );
    return 2;
  }
  // The token goes in the Authorization header: never in clear over a network.
  if (url.protocol === "http:" && !LOOPBACK_HOSTS.has(url.hostname)) {
    io.stderr(
      `error: --control ${base} is plain http; the API is https only and the token would travel ` +
        `in clear (plain http is allowed to loopback addresses only)\n`,
    );
    return 2;
  }
  let token = parsed.flags.get("token") ?? io.env.SKEIN_TOKEN;
  const tokenFile = parsed.flags.get("token-file") ?? io.env.SKEIN_TOKEN_FILE;
  if (token === undefined && tokenFile !== undefined) {
    try {
      token = (await Deno.readTextFile(tokenFile)).trim();
    } catch (e) {
      io.stderr(`error: --token-file: ${(e as Error).message}\n`);
      return 2;
    }
  }
  if (!io.fetch && base.startsWith("https:")) {
    const caFile = parsed.flags.get("ca-file") ?? io.env.SKEIN_CA_FILE ?? DEFAULT_CA_FILE;
    let caCerts: string[] | null;
    try {
      caCerts = await readCaBundle(caFile);
    } catch (e) {
      io.stderr(`error: --ca-file: ${(e as Error).message}\n`);
      return 2;
    }
    if (caCerts === null) {
      io.stderr(
        `error: ${base} is https and the CA file ${caFile} does not exist (give --ca-file or SKEIN_CA_FILE)\n`,
      );
      return 2;
    }
    // Only the mesh roots, and only a control node's SPIFFE id: operator tokens travel on it.
    const http = new ControlHttp(caCerts);
    io = { ...io, fetch: (r: Request) => http.fetch(r) };
  }
  const ctx = new CtlContext(
    io,
    base,
    token,
    (parsed.flags.get("output") ?? "table") as Output,
    parsed.flags,
  );
  try {
    return await verb.run(ctx, parsed.positional);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`error: ${e.message}\n`);
      return 2;
    }
    if (e instanceof ConfigError) {
      io.stderr(`${e.message}\n`);
      return 2;
    }
    if (e instanceof CtlError) {
      io.stderr(`error: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
