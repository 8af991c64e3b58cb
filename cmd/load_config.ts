/**
 * Loads a mode's configuration file for `skein control` / `skein proxy`, applying
 * `SKEIN_*` environment overrides and `--data-dir`.
 * @module
 */
import type { z } from "zod";
import { ConfigError, loadConfigFile } from "../config/loader.ts";
import type { CommandIo } from "./cli/io.ts";

/** Loads and validates; on invalid config prints every issue and returns null (exit 2). */
export async function loadModeConfig<S extends z.ZodType>(
  path: string,
  schema: S,
  dataDir: string | undefined,
  io: CommandIo,
): Promise<z.infer<S> | null> {
  try {
    const env = { ...io.env };
    if (dataDir) env.SKEIN_DATA_DIR = dataDir;
    return await loadConfigFile(path, schema, { env });
  } catch (e) {
    if (e instanceof ConfigError) {
      io.stderr(e.message + "\n");
      return null;
    }
    throw e;
  }
}
