/**
 * Idle timeouts for opaque TCP connections, with one periodic sweep per owner instead of a timer
 * per connection: a byte in either direction touches the entry (a field write), and the sweep
 * ends the entries that saw none for the whole timeout.
 *
 * Without it a spliced connection whose peers both went silent (a client host that vanished
 * without a FIN, a half-open NAT entry) holds two sockets and a connection slot forever.
 * @module
 */

/** Default idle timeout of a proxied TCP connection, in ms (as Envoy's `tcp_proxy`: 1 hour). */
export const DEFAULT_TCP_IDLE_TIMEOUT_MS = 60 * 60_000;

/** One watched connection. */
export interface IdleEntry {
  /** Records traffic now. */
  touch(): void;
  /** Stops watching (the connection ended). */
  stop(): void;
}

/** Options of {@linkcode IdleSweeper}. */
export interface IdleSweeperOptions {
  /** How long without a byte ends a connection, in ms; 0 turns the timeout off. */
  idleMs: number;
  /** Clock in ms. @default performance.now */
  now?: () => number;
  /** Whether to run the sweep on a timer; tests call {@linkcode IdleSweeper.sweep}. @default true */
  timer?: boolean;
}

interface _Entry extends IdleEntry {
  last: number;
  readonly onIdle: () => void;
}

/** Watches connections for idleness and calls their `onIdle` once they stayed silent too long. */
export class IdleSweeper {
  readonly #idleMs: number;
  readonly #now: () => number;
  readonly #useTimer: boolean;
  readonly #entries = new Set<_Entry>();
  #timer: ReturnType<typeof setInterval> | null = null;

  /** Creates the sweeper; it runs a timer only while it watches something. */
  constructor(opts: IdleSweeperOptions) {
    this.#idleMs = opts.idleMs;
    this.#now = opts.now ?? (() => performance.now());
    this.#useTimer = opts.timer ?? true;
  }

  /** Connections watched now. */
  get size(): number {
    return this.#entries.size;
  }

  /** Starts watching a connection; `onIdle` runs at most once, from a sweep. */
  watch(onIdle: () => void): IdleEntry {
    const now = this.#now;
    const entries = this.#entries;
    const e: _Entry = {
      last: now(),
      onIdle,
      touch() {
        e.last = now();
      },
      stop: () => {
        entries.delete(e);
        if (entries.size === 0) this.#stopTimer();
      },
    };
    if (this.#idleMs <= 0) return e;
    entries.add(e);
    this.#startTimer();
    return e;
  }

  /** Ends every connection silent for the whole timeout (also run periodically). */
  sweep(): void {
    const cutoff = this.#now() - this.#idleMs;
    for (const e of [...this.#entries]) {
      if (e.last > cutoff) continue;
      e.stop();
      try {
        e.onIdle();
      } catch {
        // Closing an already closed connection: nothing left to do.
      }
    }
  }

  /** Stops the timer and forgets every entry without calling them. */
  close(): void {
    this.#entries.clear();
    this.#stopTimer();
  }

  #startTimer(): void {
    if (!this.#useTimer || this.#timer !== null) return;
    // A tenth of the timeout, between 1 s and 1 min: closes within 10% of the timeout late.
    const every = Math.max(1_000, Math.min(this.#idleMs / 10, 60_000));
    const t = setInterval(() => this.sweep(), every);
    Deno.unrefTimer(t);
    this.#timer = t;
  }

  #stopTimer(): void {
    if (this.#timer === null) return;
    clearInterval(this.#timer);
    this.#timer = null;
  }
}
