/**
 * The process's log settings: `--log-level`/`--log-format` (or SKEIN_LOG_LEVEL/FORMAT) win;
 * otherwise the configuration file's `log:` applies, at start and again at a reload.
 * @module
 */
import type { LogSettingsCell } from "../common/log.ts";

/** The shared log settings and which of them the command line fixed. */
export interface LogControl {
  settings: LogSettingsCell;
  cliLevel: boolean;
  cliFormat: boolean;
}

/** Applies a configuration's `log:` where the command line left it open; returns what changed. */
export function applyLogConfig(
  ctl: LogControl | undefined,
  cfg: { level: LogSettingsCell["level"]; format: LogSettingsCell["format"] },
): string[] {
  if (!ctl) return [];
  const changed: string[] = [];
  if (!ctl.cliLevel && ctl.settings.level !== cfg.level) {
    ctl.settings.level = cfg.level;
    changed.push(`log.level=${cfg.level}`);
  }
  if (!ctl.cliFormat && ctl.settings.format !== cfg.format) {
    ctl.settings.format = cfg.format;
    changed.push(`log.format=${cfg.format}`);
  }
  return changed;
}
