/**
 * `skein control`: loads control.yaml and runs a control node.
 * @module
 */
import { ControlConfig } from "../config/mod.ts";
import type { Logger } from "../common/log.ts";
import { type CommandIo, EXIT } from "./io.ts";
import { loadModeConfig } from "./load_config.ts";

/** Options of {@linkcode runControl}. */
export interface RunControlOptions {
  configPath: string;
  dataDir?: string;
  io: CommandIo;
  log: Logger;
}

/** Runs a control node until SIGTERM/SIGINT; returns the exit code. */
export async function runControl(opts: RunControlOptions): Promise<number> {
  const cfg = await loadModeConfig(opts.configPath, ControlConfig, opts.dataDir, opts.io);
  if (!cfg) return EXIT.usage;
  opts.log.error("the control node runtime is not wired yet", { node: cfg.node });
  return EXIT.failure;
}
