/**
 * Blocking queries: wait until the catalog index passes a value, or a timeout.
 * @module
 */

/** Default bound on concurrent waiters. */
export const MAX_WATCHERS = 10_000;

/** Thrown by {@linkcode IndexWatcher.wait} when the waiter bound is reached. */
export class TooManyWatchersError extends Error {
  /** Creates the error. */
  constructor(readonly limit: number) {
    super(`too many blocking queries in flight (limit ${limit})`);
    this.name = "TooManyWatchersError";
  }
}

interface _Waiter {
  after: number;
  done: (index: number) => void;
}

/** Wakes blocking queries when the index they wait on is passed. */
export class IndexWatcher {
  #index: number;
  #waiters = new Set<_Waiter>();
  readonly #listeners: ((index: number) => void)[] = [];
  readonly maxWaiters: number;

  /** Creates a watcher at `index`. */
  constructor(index = 0, maxWaiters = MAX_WATCHERS) {
    this.#index = index;
    this.maxWaiters = maxWaiters;
  }

  /** The last notified index. */
  get index(): number {
    return this.#index;
  }

  /** Number of pending waiters. */
  get waiting(): number {
    return this.#waiters.size;
  }

  /** Publishes a new index; wakes every waiter it passes. Lower values are ignored. */
  notify(index: number): void {
    if (index <= this.#index) return;
    this.#index = index;
    for (const w of [...this.#waiters]) if (index > w.after) w.done(index);
    for (const l of this.#listeners) l(index);
  }

  /**
   * Calls `listener` with each new index, synchronously inside {@linkcode notify}: for a holder
   * of many waiters at once that would rather not pay a promise and a timer for each. Returns
   * the function that removes it.
   */
  onNotify(listener: (index: number) => void): () => void {
    this.#listeners.push(listener);
    return () => {
      const i = this.#listeners.indexOf(listener);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }

  /**
   * Resolves with the current index once it is above `index`, or when `timeoutMs` elapses or
   * `signal` aborts (then with the unchanged current index). Throws
   * {@linkcode TooManyWatchersError} when the bound is reached.
   */
  wait(index: number, timeoutMs: number, signal?: AbortSignal): Promise<number> {
    if (this.#index > index || timeoutMs <= 0 || signal?.aborted) {
      return Promise.resolve(this.#index);
    }
    if (this.#waiters.size >= this.maxWaiters) {
      return Promise.reject(new TooManyWatchersError(this.maxWaiters));
    }
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", finish);
        this.#waiters.delete(waiter);
        resolve(this.#index);
      };
      const waiter: _Waiter = { after: index, done: finish };
      const timer = setTimeout(finish, timeoutMs);
      signal?.addEventListener("abort", finish, { once: true });
      this.#waiters.add(waiter);
    });
  }
}
