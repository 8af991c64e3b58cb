/**
 * What each member of the mesh says it holds, as the leader hears it: the roots it trusts and
 * the root its certificate comes from (SHA-256 fingerprints), reported with heartbeats. Kept in
 * the leader's memory only: members report again every heartbeat, so a new leader knows as
 * much after one heartbeat interval.
 * @module
 */

/** One member's report. */
export interface TrustReport {
  /** Fingerprints of the roots it trusts. */
  readonly roots: readonly string[];
  /** Fingerprint of the root its certificate chains to, or null when it cannot tell. */
  readonly leafRoot: string | null;
  /**
   * Fingerprint of the intermediate that signed its certificate, null when a root did, absent
   * when the member does not say (an older proxy).
   */
  readonly leafIssuer?: string | null;
}

/** Most members remembered; reports of members beyond it are dropped, oldest first. */
export const MAX_TRUST_REPORTS = 65_536;

/** The latest report of each member, by member name (`svc/<service>/<id>`). */
export class TrustReports {
  readonly #byMember = new Map<string, TrustReport>();

  /** Records `member`'s report, replacing its previous one. */
  record(member: string, report: TrustReport): void {
    this.#byMember.delete(member);
    if (this.#byMember.size >= MAX_TRUST_REPORTS) {
      const oldest = this.#byMember.keys().next();
      if (!oldest.done) this.#byMember.delete(oldest.value);
    }
    this.#byMember.set(member, report);
  }

  /** The latest report of `member`, if any. */
  get(member: string): TrustReport | undefined {
    return this.#byMember.get(member);
  }

  /** Forgets every member `keep` says no. */
  retain(keep: (member: string) => boolean): void {
    for (const m of [...this.#byMember.keys()]) if (!keep(m)) this.#byMember.delete(m);
  }
}

/** The member name of a proxy instance. */
export function instanceMember(service: string, id: string): string {
  return `svc/${service}/${id}`;
}
