/**
 * A small event emitter with the `on`/`once`/`off`/`emit` shape the h2 call code uses
 * (node's EventEmitter is heavier than these streams need). Every listener of an emitter lives
 * in one flat array of (event, listener, once) triples: a stream has about ten listeners, so a
 * scan is cheaper than the object, slot and two arrays per event a map of events costs, and
 * the collector sees one array per stream instead of dozens of small objects.
 *
 * The array is allocated once at a stream's usual size and its used length kept beside it: a
 * JavaScript array pushed to and shortened again (listeners come and go during a call) is
 * reallocated as it grows and trimmed as it shrinks, a new backing store each time.
 * @module
 */

/** An event listener; arguments depend on the event. */
// deno-lint-ignore no-explicit-any
export type Listener = (...args: any[]) => void;

/** Slots allocated with the first listener: six listeners, a call's usual most per stream. */
const _FIRST_SLOTS = 18;

/** Listeners of one emitter. */
export class Emitter {
  /** `[event, listener, once, event, listener, once, …]`, in the order they were added. */
  #ls: unknown[] | null = null;
  /** Slots of {@linkcode #ls} in use. */
  #n = 0;

  /** Adds a listener. */
  on(event: string, fn: Listener): this {
    this.#add(event, fn, false);
    return this;
  }

  /** Adds a listener called at most once. */
  once(event: string, fn: Listener): this {
    this.#add(event, fn, true);
    return this;
  }

  /** Removes a listener (added with `on` or `once`); the earliest such one. */
  off(event: string, fn: Listener): this {
    const ls = this.#ls;
    if (ls === null) return this;
    for (let i = 0; i < this.#n; i += 3) {
      if (ls[i] === event && ls[i + 1] === fn) {
        this.#removeAt(ls, i);
        break;
      }
    }
    return this;
  }

  /** Listeners of `event`. */
  listenerCount(event: string): number {
    const ls = this.#ls;
    if (ls === null) return 0;
    let n = 0;
    for (let i = 0; i < this.#n; i += 3) if (ls[i] === event) n++;
    return n;
  }

  /**
   * Calls the listeners of `event` with `a` and `b` (those present when it is emitted, in
   * order; a `once` one removed before it is called); whether there were any. Two fixed
   * arguments, since no event here carries more: a rest parameter would be an array per emit.
   */
  // deno-lint-ignore no-explicit-any
  emit(event: string, a?: any, b?: any): boolean {
    const ls = this.#ls;
    if (ls === null) return false;
    let first = -1;
    let more: Listener[] | null = null;
    for (let i = 0; i < this.#n; i += 3) {
      if (ls[i] !== event) continue;
      if (first === -1) first = i;
      else (more ??= [ls[first + 1] as Listener]).push(ls[i + 1] as Listener);
    }
    if (first === -1) return false;
    if (more === null) {
      const fn = ls[first + 1] as Listener;
      if (ls[first + 2] === true) this.#removeAt(ls, first);
      fn(a, b);
      return true;
    }
    // Several: the `once` ones are removed up front, then all are called from the snapshot.
    for (let i = this.#n - 3; i >= first; i -= 3) {
      if (ls[i] === event && ls[i + 2] === true) this.#removeAt(ls, i);
    }
    for (const fn of more) fn(a, b);
    return true;
  }

  /** Forgets every listener (the emitter will emit nothing more). */
  protected dropListeners(): void {
    this.#ls = null;
    this.#n = 0;
  }

  /** Hook: a listener for `event` was added. */
  protected added(_event: string): void {}

  #add(event: string, fn: Listener, once: boolean): void {
    let ls = this.#ls;
    if (ls === null) ls = this.#ls = new Array(_FIRST_SLOTS);
    else if (this.#n + 3 > ls.length) {
      const grown = new Array(ls.length * 2);
      for (let i = 0; i < this.#n; i++) grown[i] = ls[i];
      ls = this.#ls = grown;
    }
    const n = this.#n;
    ls[n] = event;
    ls[n + 1] = fn;
    ls[n + 2] = once;
    this.#n = n + 3;
    this.added(event);
  }

  /** Removes the triple at `i` in place, clearing the freed slots (no listener kept alive). */
  #removeAt(ls: unknown[], i: number): void {
    const n = this.#n - 3;
    for (let j = i; j < n; j++) ls[j] = ls[j + 3];
    ls[n] = undefined;
    ls[n + 1] = undefined;
    ls[n + 2] = undefined;
    this.#n = n;
  }
}
