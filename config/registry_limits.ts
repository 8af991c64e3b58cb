/**
 * Bounds on what one service instance may carry in the registry, shared by proxy.yaml (so a
 * proxy refuses at start what the control plane would refuse at registration) and the control
 * API's registration schema. They are tight on purpose: every proxy holds every instance of
 * the catalog in memory, once per worker, so one instance's size is paid fleet-wide.
 * @module
 */
import { z } from "zod";
import { isHost } from "./address.ts";

/** Most tags, and most capabilities, one instance may carry. */
export const MAX_INSTANCE_LABELS = 16;
/** Longest tag or capability, in characters. */
export const MAX_INSTANCE_LABEL_CHARS = 64;
/** Most `meta` entries one instance may carry. */
export const MAX_INSTANCE_META_ENTRIES = 16;
/** Longest `meta` key, in characters. */
export const MAX_INSTANCE_META_KEY_CHARS = 64;
/** Longest `meta` value, in characters. */
export const MAX_INSTANCE_META_VALUE_CHARS = 256;
/** Longest `version`, in characters. */
export const MAX_INSTANCE_VERSION_CHARS = 64;

/**
 * Control and format characters (C0, DEL, C1, bidi overrides, zero-width marks): refused in
 * every registry string, because they reach terminals (`skein ctl`) and logs.
 */
const _UNPRINTABLE = /[\p{Cc}\p{Cf}]/u;

/** Whether `s` holds a control or format character. */
export function hasControlChars(s: string): boolean {
  return _UNPRINTABLE.test(s);
}

/** A registry string of at most `max` characters without control or format characters. */
export function registryString(max: number): z.ZodString {
  return z.string().max(max).refine((s) => !hasControlChars(s), {
    message: "must not contain control characters",
  });
}

/** An instance address: an IP literal (IPv6 without brackets) or a host name. */
export const instanceAddress = z.string().min(1).max(253).refine(isHost, {
  message: "expected an IP address or a host name",
});

/** A tag or capability. */
export const instanceLabel = registryString(MAX_INSTANCE_LABEL_CHARS);

/** An instance's tags or capabilities. */
export const instanceLabels = z.array(instanceLabel).max(MAX_INSTANCE_LABELS);

/** An instance's `meta` map. */
export const instanceMeta = z.record(
  registryString(MAX_INSTANCE_META_KEY_CHARS),
  registryString(MAX_INSTANCE_META_VALUE_CHARS),
).refine((m) => Object.keys(m).length <= MAX_INSTANCE_META_ENTRIES, {
  message: `at most ${MAX_INSTANCE_META_ENTRIES} meta entries`,
});

/** Most nesting walked by {@linkcode controlCharPath}; deeper values are reported as such. */
const _MAX_WALK_DEPTH = 32;

/**
 * The path (`a.b[2]`) of the first string, or object key, holding a control or format
 * character in a JSON value; null when there is none. For resources, whose many string fields
 * (names, header values, hosts) reach the same terminals and logs as instance fields.
 */
export function controlCharPath(v: unknown, path = "", depth = 0): string | null {
  if (typeof v === "string") return hasControlChars(v) ? path || "(value)" : null;
  if (v === null || typeof v !== "object") return null;
  if (depth >= _MAX_WALK_DEPTH) return `${path} (nested too deeply)`;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const p = controlCharPath(v[i], `${path}[${i}]`, depth + 1);
      if (p !== null) return p;
    }
    return null;
  }
  for (const [k, x] of Object.entries(v)) {
    const here = path === "" ? k : `${path}.${k}`;
    if (hasControlChars(k)) return `${path}${path === "" ? "" : "."}(a key)`;
    const p = controlCharPath(x, here, depth + 1);
    if (p !== null) return p;
  }
  return null;
}
