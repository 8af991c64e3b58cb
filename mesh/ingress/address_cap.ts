/**
 * Open connections per client address, capped (pure): one host on the internet cannot take
 * every connection slot of an ingress listener by opening connections and sending nothing.
 * @module
 */

/** Counts connections by client address and refuses one over the cap. */
export class AddressCap {
  readonly #max: number;
  readonly #open = new Map<string, number>();
  /** Connections refused so far. */
  refused = 0;

  /** A cap of `max` open connections per address. */
  constructor(max: number) {
    this.#max = max;
  }

  /** Takes a slot for `addr`; false (and counted as refused) when it holds `max` already. */
  take(addr: string): boolean {
    const n = this.#open.get(addr) ?? 0;
    if (n >= this.#max) {
      this.refused++;
      return false;
    }
    this.#open.set(addr, n + 1);
    return true;
  }

  /** Gives back a slot `take` granted for `addr`. */
  release(addr: string): void {
    const n = (this.#open.get(addr) ?? 0) - 1;
    if (n > 0) this.#open.set(addr, n);
    else this.#open.delete(addr);
  }

  /** Connections open now from `addr`. */
  openFrom(addr: string): number {
    return this.#open.get(addr) ?? 0;
  }
}
