/**
 * `skein proxy` reads proxy.yaml (at start and on SIGHUP) in a short-lived child process
 * (`skein __proxy-config FILE`, `config_dump.ts`) and takes the validated configuration over
 * as JSON. The YAML parser, the config loader and the proxy schema then never load into the
 * proxy's isolate, where a module once imported stays for the life of the process and a
 * terminated worker's memory is not returned to the system: about 8 MB RSS less for as long
 * as the proxy runs (docs/footprint.md). Without permission to start a process (a `deno run`
 * without `--allow-run`), the file is read in this process as before.
 * @module
 */
import type { ProxyConfig } from "../config/proxy_schema.ts";
import type { Logger } from "../common/log.ts";
import type { CommandIo } from "./cli/io.ts";
import { selfCommand } from "./self_command.ts";

/** The internal subcommand the child runs (dispatched by cmd/skein.ts). */
export const CONFIG_CHILD_COMMAND = "__proxy-config";

/** What a child's exit means. */
export type ChildResult =
  | { kind: "config"; config: ProxyConfig }
  | { kind: "invalid"; issues: string }
  | { kind: "failed"; why: string };

/** Interprets a finished child: exit 0 with JSON, 2 with the file's issues, else a failure. */
export function childResult(code: number, stdout: string, stderr: string): ChildResult {
  if (code === 2) return { kind: "invalid", issues: stderr };
  if (code !== 0) {
    return { kind: "failed", why: `exit code ${code}: ${stderr.trim() || "no output"}` };
  }
  try {
    const config = JSON.parse(stdout);
    if (config === null || typeof config !== "object" || Array.isArray(config)) {
      return { kind: "failed", why: "its output is not a configuration object" };
    }
    return { kind: "config", config: config as ProxyConfig };
  } catch (e) {
    return { kind: "failed", why: `its output is not JSON: ${(e as Error).message}` };
  }
}

/**
 * The child's environment: the process's own without any `SKEIN_*` variable, then the
 * command's view of the environment (which holds the overrides the file is read with), then
 * `--data-dir` as SKEIN_DATA_DIR.
 */
export function childEnv(
  processEnv: Record<string, string>,
  commandEnv: Record<string, string>,
  dataDir: string | undefined,
): Record<string, string> {
  const env = Object.fromEntries(
    Object.entries(processEnv).filter(([k]) => !k.startsWith("SKEIN_")),
  );
  Object.assign(env, commandEnv);
  if (dataDir) env.SKEIN_DATA_DIR = dataDir;
  return env;
}

/**
 * Loads and validates proxy.yaml in a child process; null when it is invalid, with every issue
 * written to `io.stderr` as the file loader words them.
 */
export async function readProxyConfig(
  path: string,
  dataDir: string | undefined,
  io: CommandIo,
  log: Logger,
): Promise<ProxyConfig | null> {
  let out: Deno.CommandOutput;
  try {
    // The child reads one file and the environment: it gets no other permission.
    const self = selfCommand(["--allow-read", "--allow-env"]);
    out = await new Deno.Command(self.cmd, {
      args: [...self.prefix, CONFIG_CHILD_COMMAND, path],
      clearEnv: true,
      env: childEnv(Deno.env.toObject(), io.env, dataDir),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied)) {
      throw e;
    }
    log.debug("reading the configuration in this process", { reason: e.message });
    const { loadProxyConfigHere } = await import("./config_dump.ts");
    return await loadProxyConfigHere(path, dataDir, io);
  }
  const dec = new TextDecoder();
  const r = childResult(out.code, dec.decode(out.stdout), dec.decode(out.stderr));
  if (r.kind === "config") return r.config;
  if (r.kind === "invalid") {
    io.stderr(r.issues);
    return null;
  }
  throw new Error(`reading ${path} in a child process failed: ${r.why}`);
}
