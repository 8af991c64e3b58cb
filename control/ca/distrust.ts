/**
 * Distrusting a rotated-out intermediate: a leaked intermediate key could otherwise mint
 * leaves that chain to the root until the intermediate expires (a year). The CA state keeps
 * the intermediates it rotated out (`retiredIntermediates`, certificates only); an operator
 * marks one distrusted, and every chain check then refuses leaves it signed
 * (`common/tls/distrust.ts`). Pure functions over {@linkcode CaState}.
 * @module
 */
import { CaError, type CaIntermediate, type CaState } from "./ca.ts";
import { MAX_RETIRED_INTERMEDIATES, type RetiredIntermediate } from "./retired.ts";
import { certFingerprint } from "./rotation.ts";

/**
 * `state` with `old` remembered as rotated out at `now` (trusted still), expired entries
 * dropped, and at most {@linkcode MAX_RETIRED_INTERMEDIATES} kept: a full list drops its
 * oldest entry that is not distrusted. A distrusted entry is never dropped before it expires
 * (that would trust it again), so a list full of them refuses the rotation.
 */
export function retireIntermediate(
  state: CaState,
  old: CaIntermediate,
  now: number,
): CaState {
  const kept = _live(state, now).filter((r) => r.id !== old.id);
  const entry: RetiredIntermediate = {
    id: old.id,
    fingerprint: certFingerprint(old.certPem),
    certPem: old.certPem,
    notAfter: old.notAfter,
    retiredAt: now,
    distrustedAt: null,
  };
  const list = [...kept, entry];
  while (list.length > MAX_RETIRED_INTERMEDIATES) {
    const i = list.findIndex((r) => r.distrustedAt === null);
    if (i < 0 || i === list.length - 1) {
      throw new CaError(
        "invalid_intermediate",
        `${MAX_RETIRED_INTERMEDIATES} distrusted intermediates have not expired yet; ` +
          "no further intermediate can be rotated out before one of them expires",
      );
    }
    list.splice(i, 1);
  }
  return { ...state, retiredIntermediates: list };
}

/** Whether `ref` (an id or a fingerprint, any case, colons optional) names `r`. */
export function namesIntermediate(ref: string, r: { id: string; certPem: string }): boolean {
  const want = ref.trim().toLowerCase().replaceAll(":", "");
  if (want.length === 0) return false;
  return want === r.id.toLowerCase() ||
    want === certFingerprint(r.certPem).toLowerCase().replaceAll(":", "");
}

/**
 * The rotated-out intermediate `ref` (id or fingerprint) names, for distrusting it. Throws
 * `intermediate_active` when `ref` is the intermediate that signs now (distrusting it would
 * leave the CA unable to issue a leaf anyone accepts) and `unknown_intermediate` when no
 * rotated-out intermediate is called that (an expired one included: nothing chains through it).
 */
export function findRetiredIntermediate(
  state: CaState,
  ref: string,
  now: number,
): RetiredIntermediate {
  for (const root of state.roots) {
    if (root.intermediate !== undefined && namesIntermediate(ref, root.intermediate)) {
      throw new CaError(
        "intermediate_active",
        `intermediate ${root.intermediate.id} signs leaves now; install a new one first ` +
          "(`skein ca intermediate`, then `skein ctl ca rotate --intermediate-cert F " +
          "--intermediate-key F`) and distrust this one after",
      );
    }
  }
  const found = _live(state, now).find((r) => namesIntermediate(ref, r));
  if (found === undefined) {
    const known = _live(state, now).map((r) => r.id);
    throw new CaError(
      "unknown_intermediate",
      `no rotated-out intermediate ${JSON.stringify(ref.slice(0, 128))}` +
        (known.length > 0 ? ` (rotated out: ${known.join(", ")})` : " (none rotated out)"),
    );
  }
  return found;
}

/**
 * `state` with the rotated-out intermediate `ref` distrusted from `now` on (unchanged when it
 * already is). Refusals as {@linkcode findRetiredIntermediate}.
 */
export function distrustIntermediate(state: CaState, ref: string, now: number): CaState {
  const target = findRetiredIntermediate(state, ref, now);
  if (target.distrustedAt !== null) return state;
  const list = _live(state, now).map((r) => r.id === target.id ? { ...r, distrustedAt: now } : r);
  return { ...state, retiredIntermediates: list };
}

/**
 * The distrusted intermediates, one PEM each (the catalog's `trust.distrusted`): those not yet
 * expired at `now`, or all of them without `now`.
 */
export function distrustedIntermediatePems(state: CaState, now?: number): string[] {
  const list = now === undefined ? state.retiredIntermediates ?? [] : _live(state, now);
  return list.filter((r) => r.distrustedAt !== null).map((r) => r.certPem);
}

/**
 * The members whose leaf still comes from `fingerprint`, or whose leaf issuer is unknown, out
 * of `members` (name → fingerprint of the certificate that signed its leaf, null when a root
 * signed it, undefined when it never said). Sorted.
 */
export function membersOnIntermediate(
  members: ReadonlyMap<string, string | null | undefined>,
  fingerprint: string,
): string[] {
  const out: string[] = [];
  for (const [m, issuer] of members) {
    if (issuer === undefined || issuer === fingerprint) out.push(m);
  }
  return out.sort();
}

/** Most members a refusal names. */
const _NAMES_IN_REFUSAL = 10;

/**
 * Why distrusting intermediate `intermediateId` now would cut members off, or null when it
 * would not: a member may still hold a leaf from it (`members`, from
 * {@linkcode membersOnIntermediate}), or leaves it signed before it was rotated out may still
 * be valid (until `leavesValidUntil`), with connections made with them still open.
 */
export function distrustBlockers(o: {
  intermediateId: string;
  members: readonly string[];
  leavesValidUntil: number;
  now: number;
}): string | null {
  const parts: string[] = [];
  if (o.members.length > 0) {
    const named = o.members.slice(0, _NAMES_IN_REFUSAL).join(", ") +
      (o.members.length > _NAMES_IN_REFUSAL
        ? ` and ${o.members.length - _NAMES_IN_REFUSAL} more`
        : "");
    parts.push(`${o.members.length} member(s) may still hold a leaf from it (${named})`);
  }
  if (o.now < o.leavesValidUntil) {
    parts.push(
      `leaves it signed stay valid until ${new Date(o.leavesValidUntil).toISOString()}`,
    );
  }
  if (parts.length === 0) return null;
  return `distrusting intermediate ${o.intermediateId} now would cut off members: ` +
    `${parts.join("; ")}. Run it again then (members move at their next renewal), or pass ` +
    "now: true (`--now`) to cut them off at once";
}

function _live(state: CaState, now: number): RetiredIntermediate[] {
  return (state.retiredIntermediates ?? []).filter((r) => r.notAfter > now);
}
