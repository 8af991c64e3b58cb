/**
 * A small event emitter with the `on`/`once`/`off`/`emit` shape the h2 call code uses
 * (node's EventEmitter is heavier than these streams need).
 * @module
 */

/** An event listener; arguments depend on the event. */
// deno-lint-ignore no-explicit-any
export type Listener = (...args: any[]) => void;

interface _Entry {
  fn: Listener;
  once: boolean;
}

/** Listeners by event name. */
export class Emitter {
  #ls: Map<string, _Entry[]> | null = null;

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

  /** Removes a listener (added with `on` or `once`). */
  off(event: string, fn: Listener): this {
    const l = this.#ls?.get(event);
    if (l === undefined) return this;
    const i = l.findIndex((e) => e.fn === fn);
    if (i >= 0) l.splice(i, 1);
    return this;
  }

  /** Listeners of `event`. */
  listenerCount(event: string): number {
    return this.#ls?.get(event)?.length ?? 0;
  }

  /** Calls the listeners of `event`; whether there were any. */
  // deno-lint-ignore no-explicit-any
  emit(event: string, ...args: any[]): boolean {
    const l = this.#ls?.get(event);
    if (l === undefined || l.length === 0) return false;
    if (l.length === 1) {
      const e = l[0]!;
      if (e.once) l.length = 0;
      e.fn(...args);
      return true;
    }
    const copy = l.slice();
    for (const e of copy) {
      if (e.once) {
        const i = l.indexOf(e);
        if (i >= 0) l.splice(i, 1);
      }
      e.fn(...args);
    }
    return true;
  }

  /** Hook: a listener for `event` was added. */
  protected added(_event: string): void {}

  #add(event: string, fn: Listener, once: boolean): void {
    const m = this.#ls ??= new Map();
    const l = m.get(event);
    if (l === undefined) m.set(event, [{ fn, once }]);
    else l.push({ fn, once });
    this.added(event);
  }
}
