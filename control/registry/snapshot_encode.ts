/**
 * Encoding a registry snapshot: in one go, or a slice of instances at a time so a node's event
 * loop (a leader's heartbeats) is not held for the whole of a fleet-sized registry.
 * @module
 */
import { canonicalJson } from "./canonical_json.ts";
import type { Instance } from "./instance.ts";
import { concatBytes } from "../../common/bytes.ts";

/** A snapshot captured by {@linkcode RegistryState.snapshotParts}, not yet encoded. */
export interface SnapshotParts {
  /** The encoded state up to the opening bracket of the instances. */
  before: string;
  /** The instances, in snapshot order. */
  instances: readonly Instance[];
  /** The encoded state from the closing bracket of the instances on. */
  after: string;
}

/** Encodes captured snapshot parts in one go: the bytes of {@linkcode RegistryState.snapshot}. */
export function encodeSnapshotParts(p: SnapshotParts): Uint8Array {
  return new TextEncoder().encode(p.before + _instancesJson(p.instances) + p.after);
}

/** Instances between the brackets of their array, as `canonicalJson` writes them. */
function _instancesJson(list: readonly Instance[]): string {
  return list.length === 0 ? "" : canonicalJson(list).slice(1, -1);
}

/** Instances encoded per slice of {@linkcode encodeSnapshotYielding}. */
export const SNAPSHOT_SLICE_INSTANCES = 2_000;

/**
 * Encodes captured snapshot parts a slice of instances at a time, giving the event loop back
 * between slices: in one go, 50,000 instances held a leader's loop (and its heartbeats) for up
 * to 0.9 s. Gives the same bytes as {@linkcode encodeSnapshotParts}.
 */
export async function encodeSnapshotYielding(
  p: SnapshotParts,
  slice = SNAPSHOT_SLICE_INSTANCES,
  stats?: { longestSliceMs: number },
): Promise<Uint8Array> {
  const enc = new TextEncoder();
  const chunks: Uint8Array[] = [enc.encode(p.before)];
  for (let i = 0; i < p.instances.length; i += slice) {
    await new Promise((r) => setTimeout(r, 0));
    const t0 = performance.now();
    const part = _instancesJson(p.instances.slice(i, i + slice));
    chunks.push(enc.encode(i === 0 ? part : "," + part));
    if (stats) stats.longestSliceMs = Math.max(stats.longestSliceMs, performance.now() - t0);
  }
  chunks.push(enc.encode(p.after));
  return concatBytes(chunks);
}
