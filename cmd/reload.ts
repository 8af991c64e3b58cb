/**
 * SIGHUP: re-read the configuration file the process started with. An invalid file is
 * refused with its errors and the running configuration kept; keys that can change at run
 * time are applied; any other changed key is named as needing a restart (never silently
 * ignored).
 * @module
 */
import type { Logger } from "../common/log.ts";
import type { CommandIo } from "./cli/io.ts";
import { onSighup } from "./sighup.ts";

/** Top-level keys whose values differ between two configurations. */
export function changedKeys(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).sort();
}

/** What applying a re-read configuration did. */
export interface ReloadOutcome<C> {
  /** What was applied, for the log. */
  applied: string[];
  /** Changed keys not in effect until a restart. */
  needsRestart: string[];
  /** Changes refused, with why (the rest applied). */
  refused: string[];
  /** The configuration running now. */
  running: C;
}

/** What {@linkcode listenForReload} needs. */
export interface ReloadOptions<C> {
  /** The configuration file, for the log. */
  path: string;
  /**
   * Reads and validates the file again; null when it is invalid, having written why to
   * `io.stderr`. The caller chooses how (the proxy reads it in a child process).
   */
  load(io: CommandIo): Promise<C | null>;
  io: CommandIo;
  log: Logger;
  /** The configuration running now (updated after each reload). */
  current: C;
  /** Keys applied at run time (with `apply`; `reconcile` decides for itself). */
  reloadable?: readonly string[];
  /** Applies the reloadable part of `next`; returns what it changed, for the log. */
  apply?(next: C): string[];
  /** Instead of `reloadable`/`apply`: applies what it can of `next` and says what it did. */
  reconcile?(current: C, next: C): ReloadOutcome<C> | Promise<ReloadOutcome<C>>;
}

/** The `reloadable`/`apply` pair as a reconcile step. */
function _byKeys<C extends Record<string, unknown>>(
  reloadable: readonly string[],
  apply: (next: C) => string[],
): (current: C, next: C) => ReloadOutcome<C> {
  return (current, next) => {
    const needsRestart = changedKeys(current, next).filter((k) => !reloadable.includes(k));
    const applied = apply(next);
    // What runs now: the reloadable keys from the file, the rest as before.
    const running = {
      ...current,
      ...Object.fromEntries(reloadable.map((k) => [k, next[k]])),
    } as C;
    return { applied, needsRestart, refused: [], running };
  };
}

/** Reloads on every SIGHUP until the returned function is called. */
export function listenForReload<C>(o: ReloadOptions<C>): () => void {
  let current: C = o.current;
  const reconcile = o.reconcile ??
    (_byKeys(
      o.reloadable ?? [],
      (o.apply ?? (() => [])) as (n: unknown) => string[],
    ) as unknown as (
      c: C,
      n: C,
    ) => ReloadOutcome<C>);
  const reload = async () => {
    const errors: string[] = [];
    const next = await o.load({ ...o.io, stderr: (t) => errors.push(t.trimEnd()) });
    if (next === null) {
      o.log.error("configuration reload refused; the running configuration is kept", {
        file: o.path,
        error: errors.join("; "),
      });
      return;
    }
    const r = await reconcile(current, next);
    current = r.running;
    const fields = {
      file: o.path,
      applied: r.applied.join(",") || "nothing",
      ...(r.needsRestart.length > 0 ? { needs_restart: r.needsRestart.join(",") } : {}),
      ...(r.refused.length > 0 ? { refused: r.refused.join("; ") } : {}),
    };
    if (r.needsRestart.length > 0 || r.refused.length > 0) {
      o.log.warn("configuration reloaded; some changes are not in effect", fields);
    } else {
      o.log.info("configuration reloaded", fields);
    }
  };
  return onSighup(reload, (e) => o.log.error("reload failed", { err: e as Error }));
}
