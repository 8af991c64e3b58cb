/**
 * The mirror target of one Route rule, as the forwarder's mirroring needs it
 * ({@linkcode MirrorTarget}): endpoints from a balancer (a version subset of the same service,
 * or another service's), and a bound on copies in flight, per worker thread.
 * @module
 */
import type { Balancer } from "../balance/mod.ts";
import type { Endpoint, MirrorOutcome, MirrorTarget } from "../forward/mod.ts";

/** Copies in flight per mirror target and worker; more are dropped and counted. */
export const MIRROR_MAX_IN_FLIGHT = 16;

/** A mirror target over a balancer found at pick time (endpoints change with the catalog). */
export class BalancedMirror implements MirrorTarget {
  /** Header lines each copy carries. */
  readonly extraHeaders: string;
  readonly #balancer: () => Balancer | null;
  readonly #count: (o: MirrorOutcome) => void;
  readonly #max: number;
  #inFlight = 0;

  /** Creates the target; `balancer` is asked for the endpoints at every copy. */
  constructor(
    balancer: () => Balancer | null,
    extraHeaders: string,
    count: (o: MirrorOutcome) => void,
    max = MIRROR_MAX_IN_FLIGHT,
  ) {
    this.#balancer = balancer;
    this.extraHeaders = extraHeaders;
    this.#count = count;
    this.#max = max;
  }

  /** Copies in flight now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** An endpoint for one copy, or null. */
  pick(): Endpoint | null {
    return this.#balancer()?.pick(undefined, undefined) ?? null;
  }

  /** Takes a slot for one copy; false when the bound is reached. */
  tryAcquire(): boolean {
    if (this.#inFlight >= this.#max) return false;
    this.#inFlight++;
    return true;
  }

  /** Gives a slot back. */
  release(): void {
    if (this.#inFlight > 0) this.#inFlight--;
  }

  /** Counts an outcome. */
  count(o: MirrorOutcome): void {
    this.#count(o);
  }
}
