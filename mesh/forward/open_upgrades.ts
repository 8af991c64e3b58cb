/**
 * The open upgraded connections (TCP tunnels, WebSockets) of one listener whose caller must be
 * checked again when policies change: a tighter `Authorization` must end what it no longer
 * allows, not only refuse new ones.
 * @module
 */
import type { Logger } from "../../common/log.ts";

/** One open upgraded connection: how to check it and how to end both of its sides. */
export interface OpenUpgrade {
  /** Whether the caller is still allowed (may audit a refusal). */
  readonly stillAllowed: () => boolean;
  /** Ends the connection at both ends. */
  readonly close: () => void;
}

/** The open upgraded connections of a listener. */
export class OpenUpgrades {
  readonly #open = new Set<OpenUpgrade>();
  readonly #log: Logger;

  /** Creates an empty set; `log` hears checks that throw. */
  constructor(log: Logger) {
    this.#log = log;
  }

  /** Connections held now. */
  get size(): number {
    return this.#open.size;
  }

  /** Holds `u` until {@linkcode remove} (its connection ended). */
  add(u: OpenUpgrade): void {
    this.#open.add(u);
  }

  /** Forgets `u`. */
  remove(u: OpenUpgrade): void {
    this.#open.delete(u);
  }

  /** Checks every held connection again and closes those not allowed; returns how many. */
  recheck(): number {
    let closed = 0;
    for (const u of [...this.#open]) {
      let ok = false;
      try {
        ok = u.stillAllowed();
      } catch (e) {
        // Fail closed: a check that cannot be made is not a permission.
        this.#log.error("re-checking an upgraded connection failed; closing it", {
          err: e as Error,
        });
      }
      if (ok) continue;
      this.#open.delete(u);
      u.close();
      closed++;
    }
    return closed;
  }

  /** Forgets every connection without closing it (the listener is closing them). */
  clear(): void {
    this.#open.clear();
  }
}
