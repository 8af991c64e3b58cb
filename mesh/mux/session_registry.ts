/**
 * The server-side mux sessions of one thread and their running totals, which the proxy's
 * `/metrics` reads at scrape time; kept beside the mux so the session type and its counters
 * stay together.
 * @module
 */
import type { MuxSessionStats } from "./session.ts";

/**
 * What the mux sessions of one direction have done, read at scrape time: `open` is a level,
 * the rest only go up. A field left out is one that side cannot tell (and is not exported).
 */
export interface MuxTotals {
  /** Sessions open now. */
  open: number;
  /** Sessions established so far. */
  sessions: number;
  /** Streams opened or accepted so far. */
  streams: number;
  /** Writes to the connections so far; `frames / writes` is the batching. */
  writes?: number;
  /** Frames sent so far. */
  frames?: number;
  /** Inbound sessions sent to another worker of this proxy so far. */
  rebalanced?: number;
}

/** The part of a {@linkcode MuxSession} the registry reads (a real session fits). */
export interface CountedMuxSession {
  /** Whether the session has ended. */
  readonly closed: boolean;
  /** A snapshot of its counters. */
  stats(): MuxSessionStats;
}

/**
 * The server-side mux sessions of one thread, so `/metrics` can count them: `listenMtls` adds
 * each session and removes it from its `onClose`. The counters of ended sessions are folded
 * into running totals, so the exported counters never go back. It holds only open sessions, so
 * it is bounded by the inbound's connection limit; the hot path never touches it.
 */
export class MuxSessionRegistry {
  readonly #live = new Set<CountedMuxSession>();
  readonly #ended = { sessions: 0, streams: 0, writes: 0, frames: 0 };
  /** Sessions sent to another worker of this proxy with a rebalancing GoAway. */
  rebalanced = 0;

  /** Sessions open now. */
  get size(): number {
    return this.#live.size;
  }

  /** Starts counting `s`; one that has already ended is folded in at once. */
  add(s: CountedMuxSession): void {
    if (this.#live.has(s)) return;
    this.#ended.sessions++;
    if (s.closed) this.#fold(s);
    else this.#live.add(s);
  }

  /** Stops tracking `s` (it ended), keeping what it counted; unknown sessions are ignored. */
  remove(s: CountedMuxSession): void {
    if (this.#live.delete(s)) this.#fold(s);
  }

  /** Totals over ended and open sessions. */
  totals(): Required<MuxTotals> {
    const t = { open: 0, ...this.#ended, rebalanced: this.rebalanced };
    for (const s of this.#live) {
      const st = s.stats();
      t.open++;
      t.streams += st.opened;
      t.writes += st.flushes;
      t.frames += st.frames;
    }
    return t;
  }

  #fold(s: CountedMuxSession): void {
    const st = s.stats();
    this.#ended.streams += st.opened;
    this.#ended.writes += st.flushes;
    this.#ended.frames += st.frames;
  }
}
