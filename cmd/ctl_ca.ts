/**
 * `skein ctl ca status`: the text view of `GET /v1/ca/rotation` (the rotation's phase, and
 * who the leader is still waiting for). Kept apart from `cmd/ctl.ts` so the CA verbs stay
 * one block.
 * @module
 */

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
