/**
 * The CA verbs of `skein ctl` that need more than one call: `ca status` (the text view of
 * `GET /v1/ca/rotation`: the rotation's phase and who the leader is still waiting for) and
 * `ca export-seed` (the files a new control node needs). Kept apart from `cmd/ctl.ts` so the CA verbs stay
 * one block.
 * @module
 */
import {
  caStateFromOfflineSeed,
  caStateFromPem,
  MAX_SEED_FILE_BYTES,
  writeOfflineSeed,
  writeSeedCa,
} from "../../control/ca/mod.ts";
import { UsageError } from "../cli/args.ts";

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
): Promise<{
  files: string[];
  rootId: string;
  offline: boolean;
  /** The root certificate written. */
  certFile: string;
  /** The key written: the root's, or with an offline root the intermediate's. */
  keyFile: string;
}> {
  if (typeof json.intermediate_cert_pem === "string") {
    // Offline root: the root certificate and the intermediate pair, checked as a node will.
    const state = await caStateFromOfflineSeed({
      rootCertPem: String(json.cert_pem ?? ""),
      intermediateCertPem: json.intermediate_cert_pem,
      intermediateKeyPem: String(json.intermediate_key_pem ?? ""),
      trustDomain: String(json.trust_domain ?? ""),
      now,
    });
    const w = await writeOfflineSeed(outDir, state);
    return {
      files: [w.certFile, w.intermediateCertFile, w.intermediateKeyFile],
      rootId: state.activeRootId,
      offline: true,
      certFile: w.certFile,
      keyFile: w.intermediateKeyFile,
    };
  }
  const state = await caStateFromPem({
    certPem: String(json.cert_pem ?? ""),
    keyPem: String(json.key_pem ?? ""),
    trustDomain: String(json.trust_domain ?? ""),
    now,
  });
  const w = await writeSeedCa(outDir, state);
  return { files: [w.certFile, w.keyFile], rootId: state.activeRootId, offline: false, ...w };
}

/**
 * The body of `POST /v1/ca/rotate` from the flags: a new root (`--activate` or not), or the
 * intermediate in `--intermediate-cert`/`--intermediate-key` (both needed; read here, checked
 * by the leader against the trusted root before anything is committed).
 */
export async function rotateBody(flags: Map<string, string>): Promise<Record<string, unknown>> {
  const certFile = flags.get("intermediate-cert");
  const keyFile = flags.get("intermediate-key");
  if (certFile === undefined && keyFile === undefined) return { activate: flags.has("activate") };
  if (certFile === undefined || keyFile === undefined) {
    throw new UsageError("ca rotate needs both --intermediate-cert F and --intermediate-key F");
  }
  if (flags.has("activate")) {
    throw new UsageError("ca rotate: --activate is for a new root, not an intermediate");
  }
  return {
    intermediate_cert_pem: await _readSmall(certFile),
    intermediate_key_pem: await _readSmall(keyFile),
  };
}

async function _readSmall(path: string): Promise<string> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(path);
  } catch (e) {
    throw new UsageError(`${path}: cannot read: ${(e as Error).message}`);
  }
  if (!st.isFile || st.size > MAX_SEED_FILE_BYTES) {
    throw new UsageError(`${path}: not a regular file of at most ${MAX_SEED_FILE_BYTES} bytes`);
  }
  return await Deno.readTextFile(path);
}
