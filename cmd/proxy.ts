/**
 * `skein proxy`: loads proxy.yaml and runs a proxy.
 * @module
 */
import { ProxyConfig } from "../config/mod.ts";
import type { Logger } from "../common/log.ts";
import { type CommandIo, EXIT } from "./io.ts";
import { loadModeConfig } from "./load_config.ts";

/** Options of {@linkcode runProxy}. */
export interface RunProxyOptions {
  configPath: string;
  dataDir?: string;
  io: CommandIo;
  log: Logger;
}

/** Runs a proxy until SIGTERM/SIGINT; returns the exit code. */
export async function runProxy(opts: RunProxyOptions): Promise<number> {
  const cfg = await loadModeConfig(opts.configPath, ProxyConfig, opts.dataDir, opts.io);
  if (!cfg) return EXIT.usage;
  opts.log.error("the proxy runtime is not wired yet", { node: cfg.node });
  return EXIT.failure;
}
