/**
 * The child side of reading proxy.yaml out of process (`proxy_config_child.ts`): loads and
 * validates the file exactly as `skein proxy` would and writes the result as JSON on stdout,
 * or every issue on stderr with exit code 2.
 * @module
 */
import { ProxyConfig } from "../config/proxy_schema.ts";
import { type CommandIo, EXIT } from "./cli/io.ts";
import { loadModeConfig } from "./load_config.ts";

/** Loads proxy.yaml in this isolate; null when it is invalid (the issues go to `io.stderr`). */
export function loadProxyConfigHere(
  path: string,
  dataDir: string | undefined,
  io: CommandIo,
): Promise<ProxyConfig | null> {
  return loadModeConfig(path, ProxyConfig, dataDir, io);
}

/**
 * Where `v` holds something JSON would not carry across unchanged (a Map, a function, a
 * non-finite number...), as a dotted path; null when it is plain data.
 */
export function notPlainJson(v: unknown, path = "$"): string | null {
  if (v === null || typeof v === "string" || typeof v === "boolean") return null;
  if (typeof v === "number") return Number.isFinite(v) ? null : path;
  if (Array.isArray(v)) {
    for (const [i, x] of v.entries()) {
      const p = notPlainJson(x, `${path}[${i}]`);
      if (p !== null) return p;
    }
    return null;
  }
  if (typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      // An absent optional key: JSON drops it, and the reader sees it absent either way.
      if (x === undefined) continue;
      const p = notPlainJson(x, `${path}.${k}`);
      if (p !== null) return p;
    }
    return null;
  }
  return path;
}

/** `skein __proxy-config FILE`: prints the validated configuration as JSON; the exit code. */
export async function runConfigDump(args: readonly string[], io: CommandIo): Promise<number> {
  if (args.length !== 1) {
    io.stderr("usage: skein __proxy-config FILE (internal: skein proxy runs it)\n");
    return EXIT.usage;
  }
  // --data-dir arrives as SKEIN_DATA_DIR, like any other override.
  const cfg = await loadProxyConfigHere(args[0]!, undefined, io);
  if (cfg === null) return EXIT.usage;
  const bad = notPlainJson(cfg);
  if (bad !== null) {
    io.stderr(`the validated configuration holds a value JSON cannot carry at ${bad}\n`);
    return EXIT.failure;
  }
  io.stdout(JSON.stringify(cfg) + "\n");
  return EXIT.ok;
}
