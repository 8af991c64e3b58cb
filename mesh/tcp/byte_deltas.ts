/**
 * What the TCP byte counters gain at a scrape: each TCP proxy's totals only grow, so the
 * counter gets what moved since the last look at that proxy. Kept per proxy object, not per
 * service: after a reload an old and a new proxy of one service run side by side.
 * @module
 */

/** The last totals seen, per TCP proxy. */
export class TcpByteDeltas {
  readonly #seen = new WeakMap<object, { up: number; down: number }>();

  /** Calls `add` with what proxy `p` of `service` moved (`sent` up, `received` down) since last time. */
  collect(
    p: object,
    service: string,
    up: number,
    down: number,
    add: (service: string, dir: "sent" | "received", n: number) => void,
  ): void {
    let s = this.#seen.get(p);
    if (s === undefined) {
      s = { up: 0, down: 0 };
      this.#seen.set(p, s);
    }
    if (up > s.up) add(service, "sent", up - s.up);
    if (down > s.down) add(service, "received", down - s.down);
    s.up = up;
    s.down = down;
  }
}
