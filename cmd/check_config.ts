/**
 * `skein check-config FILE`: validates a control, proxy or resource file and exits.
 * @module
 */
import { basename } from "node:path";
import {
  assertYamlSyntax,
  ConfigError,
  ControlConfig,
  envOverrides,
  looksLikeResources,
  parseConfigText,
  parseResourceText,
  ProxyConfig,
  readConfigFile,
} from "../config/mod.ts";
import { type CommandIo, EXIT } from "./cli/io.ts";

/** Which schema a file is checked against. */
export type ConfigKind = "control" | "proxy" | "resources";

/** Guesses the kind from the file name first, then from its keys. */
export function detectKind(path: string, text: string): ConfigKind | null {
  const base = basename(path).toLowerCase();
  if (base.startsWith("control")) return "control";
  if (base.startsWith("proxy")) return "proxy";
  if (looksLikeResources(text)) return "resources";
  if (/^(raft|peers|raft_tuning|bootstrap_token_file)\s*:/m.test(text)) return "control";
  if (/^(services|upstreams|inbound|http_proxy|control)\s*:/m.test(text)) return "proxy";
  return null;
}

/** Validates one file; prints "ok" or every issue; returns the exit code. */
export async function runCheckConfig(
  path: string,
  kind: ConfigKind | undefined,
  io: CommandIo,
): Promise<number> {
  try {
    const text = await readConfigFile(path);
    // A syntax error is the real problem; guessing the kind of a broken file would hide it.
    assertYamlSyntax(text, path);
    const k = kind ?? detectKind(path, text);
    if (!k) {
      io.stderr(
        `${path}: cannot tell whether this is a control, proxy or resource file; pass --kind control|proxy|resources\n`,
      );
      return EXIT.usage;
    }
    if (k === "resources") {
      const rs = parseResourceText(text, path);
      io.stdout(`${path}: ok (${rs.length} resource${rs.length === 1 ? "" : "s"})\n`);
    } else {
      // Judged as `skein control|proxy` would load it: with the same SKEIN_* overrides.
      const cfg = parseConfigText(text, path, k === "control" ? ControlConfig : ProxyConfig, {
        env: io.env,
      }) as Record<string, unknown>;
      const applied = envOverrides(io.env).filter((o) => String(o.path[0]) in cfg)
        .map((o) => o.variable);
      const note = applied.length > 0 ? `; with environment overrides ${applied.join(", ")}` : "";
      io.stdout(`${path}: ok (${k} configuration${note})\n`);
    }
    return EXIT.ok;
  } catch (e) {
    if (e instanceof ConfigError) {
      io.stderr(e.message + "\n");
      return EXIT.usage;
    }
    throw e;
  }
}
