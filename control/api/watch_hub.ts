/**
 * The blocking catalog queries a node holds on its lean watch path, without a promise, a timer
 * or an abort listener each: grouped by the index they hold, so a change takes every group it
 * passes at once, and swept for their deadlines by one timer of the caller's.
 *
 * Pure bookkeeping: the caller decides when to wake, expire or end, and writes the answers.
 * @module
 */

/** One blocking query the hub holds. */
export interface HeldWatch {
  /** The catalog index the watcher holds: it is answered once the catalog passes it. */
  readonly after: number;
  /** When it is answered even without a change, in the caller's clock (ms). */
  readonly deadline: number;
}

/** Holds blocking queries until a change, their deadline, or the end of them all. */
export class WatchHub<W extends HeldWatch> {
  /** Held queries by the index they hold. */
  readonly #byIndex = new Map<number, Set<W>>();
  #size = 0;

  /** Queries held now. */
  get size(): number {
    return this.#size;
  }

  /** Holds `w`. */
  add(w: W): void {
    let group = this.#byIndex.get(w.after);
    if (group === undefined) this.#byIndex.set(w.after, group = new Set());
    group.add(w);
    this.#size++;
  }

  /** Lets go of `w` (its client left); false when it was not held (already answered). */
  delete(w: W): boolean {
    const group = this.#byIndex.get(w.after);
    if (group === undefined || !group.delete(w)) return false;
    if (group.size === 0) this.#byIndex.delete(w.after);
    this.#size--;
    return true;
  }

  /** Takes every query the catalog at `index` passes (they hold a lower index). */
  takePassed(index: number): W[] {
    const out: W[] = [];
    for (const [after, group] of this.#byIndex) {
      if (after >= index) continue;
      for (const w of group) out.push(w);
      this.#byIndex.delete(after);
    }
    this.#size -= out.length;
    return out;
  }

  /** Takes every query whose deadline is at or before `now`. */
  takeExpired(now: number): W[] {
    const out: W[] = [];
    for (const [after, group] of this.#byIndex) {
      for (const w of group) {
        if (w.deadline > now) continue;
        group.delete(w);
        out.push(w);
      }
      if (group.size === 0) this.#byIndex.delete(after);
    }
    this.#size -= out.length;
    return out;
  }

  /** Takes every query held. */
  takeAll(): W[] {
    const out: W[] = [];
    for (const group of this.#byIndex.values()) for (const w of group) out.push(w);
    this.#byIndex.clear();
    this.#size = 0;
    return out;
  }
}
