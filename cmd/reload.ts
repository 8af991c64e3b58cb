/**
 * SIGHUP: re-read the configuration file the process started with. An invalid file is
 * refused with its errors and the running configuration kept; keys that can change at run
 * time are applied; any other changed key is named as needing a restart (never silently
 * ignored).
 * @module
 */
import type { z } from "zod";
import type { Logger } from "../common/log.ts";
import type { CommandIo } from "./io.ts";
import { loadModeConfig } from "./load_config.ts";

/** Top-level keys whose values differ between two configurations. */
export function changedKeys(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).sort();
}

/** What {@linkcode listenForReload} needs. */
export interface ReloadOptions<S extends z.ZodType> {
  path: string;
  schema: S;
  dataDir: string | undefined;
  io: CommandIo;
  log: Logger;
  /** The configuration running now (updated after each reload). */
  current: z.infer<S>;
  /** Keys applied at run time. */
  reloadable: readonly string[];
  /** Applies the reloadable part of `next`; returns what it changed, for the log. */
  apply(next: z.infer<S>): string[];
}

/** Reloads on every SIGHUP until the returned function is called. */
export function listenForReload<S extends z.ZodType>(o: ReloadOptions<S>): () => void {
  let current = o.current as Record<string, unknown>;
  let busy = Promise.resolve();
  const reload = async () => {
    const errors: string[] = [];
    const next = await loadModeConfig(o.path, o.schema, o.dataDir, {
      ...o.io,
      stderr: (t) => errors.push(t.trimEnd()),
    }) as Record<string, unknown> | null;
    if (next === null) {
      o.log.error("configuration reload refused; the running configuration is kept", {
        file: o.path,
        error: errors.join("; "),
      });
      return;
    }
    const changed = changedKeys(current, next);
    const restart = changed.filter((k) => !o.reloadable.includes(k));
    const applied = o.apply(next as z.infer<S>);
    if (restart.length > 0) {
      o.log.warn("configuration reloaded; some changes need a restart and are not in effect", {
        file: o.path,
        applied: applied.join(",") || "nothing",
        needs_restart: restart.join(","),
      });
    } else {
      o.log.info("configuration reloaded", {
        file: o.path,
        applied: applied.join(",") || "nothing",
      });
    }
    // What runs now: the reloadable keys from the file, the rest as before.
    current = { ...current, ...Object.fromEntries(o.reloadable.map((k) => [k, next[k]])) };
  };
  const onHup = () => {
    busy = busy.then(reload).catch((e) => o.log.error("reload failed", { err: e as Error }));
  };
  Deno.addSignalListener("SIGHUP", onHup);
  return () => Deno.removeSignalListener("SIGHUP", onHup);
}
