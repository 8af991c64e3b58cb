/**
 * The simulated world's time: one queue of events in virtual milliseconds, run in order. After
 * each event every promise it started settles (one macrotask hop drains the microtask queue)
 * before the next event runs, so a run is a pure function of its seed. Timers belong to an
 * {@linkcode Incarnation}: when a process "dies" its timers and sleeps never fire again.
 * @module
 */
import { setImmediate } from "node:timers";
import type { Clock } from "../../control/node/ports.ts";

/** One life of a simulated process; its timers stop when it dies. */
export class Incarnation {
  /** Whether the process still runs. */
  alive = true;
  /** Which life this is (counts restarts of one node). */
  constructor(readonly life: number) {}
}

/** Lives outside any process (the client, the harness): never dies. */
export const FOREVER = new Incarnation(0);

interface _Event {
  at: number;
  seq: number;
  owner: Incarnation;
  fn: () => void;
}

/** Virtual time and the event queue. */
export class World {
  #now: number;
  #seq = 0;
  /** Events sorted by (at, seq); a binary-search insert keeps the order. */
  readonly #queue: _Event[] = [];
  /** Events run so far. */
  events = 0;

  /** Starts the clock at `startMs` (an epoch time, so timestamps look real). */
  constructor(startMs = 1_700_000_000_000) {
    this.#now = startMs;
  }

  /** Virtual milliseconds since the epoch. */
  get now(): number {
    return this.#now;
  }

  /** Runs `fn` at virtual time `at` unless `owner` died by then. */
  at(at: number, fn: () => void, owner: Incarnation = FOREVER): void {
    const ev = { at: Math.max(at, this.#now), seq: this.#seq++, owner, fn };
    const q = this.#queue;
    let lo = 0;
    let hi = q.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = q[mid]!;
      if (m.at < ev.at || (m.at === ev.at && m.seq < ev.seq)) lo = mid + 1;
      else hi = mid;
    }
    q.splice(lo, 0, ev);
  }

  /** Runs `fn` after `ms` virtual milliseconds unless `owner` died by then. */
  after(ms: number, fn: () => void, owner: Incarnation = FOREVER): void {
    this.at(this.#now + ms, fn, owner);
  }

  /**
   * Lets every promise started so far settle: a macrotask runs only on an empty microtask
   * queue. (A reused MessageChannel is no such hop: a message posted while the port is
   * dispatching is delivered as a microtask, before the work it was meant to wait for.)
   */
  settle(): Promise<void> {
    return new Promise<void>((resolve) => setImmediate(resolve));
  }

  /** Runs events in order until virtual time `until`, or until `stop()` holds after an event. */
  async run(until: number, stop: () => boolean = () => false): Promise<void> {
    await this.settle();
    while (this.#queue.length > 0 && this.#queue[0]!.at <= until) {
      const ev = this.#queue.shift()!;
      this.#now = ev.at;
      if (!ev.owner.alive) continue;
      this.events++;
      ev.fn();
      await this.settle();
      if (stop()) return;
    }
    this.#now = Math.max(this.#now, until);
  }

  /** A {@linkcode Clock} whose timers belong to `owner`. */
  clock(owner: Incarnation): Clock {
    return {
      now: () => this.#now,
      every: (ms, fn) => {
        let on = true;
        const fire = () => {
          if (!on) return;
          fn();
          this.after(ms, fire, owner);
        };
        this.after(ms, fire, owner);
        return () => {
          on = false;
        };
      },
      sleep: (ms) => new Promise<void>((r) => this.after(ms, r, owner)),
      timeout: (ms) => {
        const c = new AbortController();
        this.after(
          ms,
          () => c.abort(new DOMException("signal timed out", "TimeoutError")),
          owner,
        );
        return c.signal;
      },
    };
  }

  /** Drops every queued event. */
  close(): void {
    this.#queue.length = 0;
  }
}
