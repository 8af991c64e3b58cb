/**
 * The CA verbs of `skein ctl` that need more than one call: `ca status` (the text view of
 * `GET /v1/ca/rotation`: the rotation's phase and who the leader is still waiting for) and
 * `ca export-seed` (the files a new control node needs). Kept apart from `cmd/ctl.ts` so the CA verbs stay
 * one block.
 * @module
 */
import { caStateFromPem, writeSeedCa } from "../../control/ca/mod.ts";

/** Most missing members listed by name; the rest are counted. */
const _LISTED = 20;

/** Formats a rotation status answer for people. */
export function formatCaStatus(json: Record<string, unknown>): string {
  const rot = json.rotation as
    | {
      phase: string;
      newRootId: string;
      oldRootId: string;
      trigger: string;
      startedAt: number;
      phaseSince: number;
      paused: string | null;
    }
    | null;
  const roots = (json.roots as string[] | undefined) ?? [];
  const missing = (json.missing as string[] | undefined) ?? [];
  const members = Number(json.members ?? 0);
  if (rot === null || rot === undefined) {
    const manual = roots.length > 1
      ? `\n${roots.length} roots trusted: a rotation run by hand; \`skein ctl ca finish\` ends it`
      : "";
    return `no rotation in progress (active root ${roots[0] ?? "?"})${manual}`;
  }
  const lines = [
    `rotation ${rot.oldRootId} -> ${rot.newRootId} (started by ${rot.trigger} at ${
      new Date(rot.startedAt).toISOString()
    })`,
    `phase: ${rot.phase} since ${new Date(rot.phaseSince).toISOString()} (${
      rot.phase === "trust"
        ? "waiting until every member trusts the new root"
        : "the new root signs; waiting until every certificate comes from it"
    })`,
    `caught up: ${Math.max(0, members - missing.length)} of ${members} member(s)`,
  ];
  if (rot.paused !== null) lines.push(`PAUSED: ${rot.paused}`);
  if (missing.length > 0) {
    const shown = missing.slice(0, _LISTED).join(", ");
    lines.push(
      `missing: ${shown}${missing.length > _LISTED ? ` and ${missing.length - _LISTED} more` : ""}`,
    );
  }
  return lines.join("\n");
}

/**
 * Writes the answer of `POST /v1/ca/export-seed` as `ca.pem` and `ca.key` (both 0600) in
 * `outDir`, after checking them as a control node would at start (the key matches the
 * certificate, the root is valid now); refuses to overwrite either file.
 */
export async function writeExportedSeed(
  json: Record<string, unknown>,
  outDir: string,
  now = Date.now(),
): Promise<{ certFile: string; keyFile: string; rootId: string }> {
  const state = await caStateFromPem({
    certPem: String(json.cert_pem ?? ""),
    keyPem: String(json.key_pem ?? ""),
    trustDomain: String(json.trust_domain ?? ""),
    now,
  });
  const files = await writeSeedCa(outDir, state);
  return { ...files, rootId: state.activeRootId };
}
