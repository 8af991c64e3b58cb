/**
 * A small event emitter with the `on`/`once`/`off`/`emit` shape the h2 call code uses
 * (node's EventEmitter is heavier than these streams need): listeners are kept per event in
 * one array, a `once` listener flagged by a parallel bit, so adding one allocates nothing
 * after the event's first.
 * @module
 */

/** An event listener; arguments depend on the event. */
// deno-lint-ignore no-explicit-any
export type Listener = (...args: any[]) => void;

/** One event's listeners and which of them are `once`. */
interface _Slot {
  fns: Listener[];
  once: boolean[];
}

/** Listeners by event name. */
export class Emitter {
  #ls: Record<string, _Slot> | null = null;

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
    const l = this.#ls?.[event];
    if (l === undefined) return this;
    const i = l.fns.indexOf(fn);
    if (i >= 0) {
      l.fns.splice(i, 1);
      l.once.splice(i, 1);
    }
    return this;
  }

  /** Listeners of `event`. */
  listenerCount(event: string): number {
    return this.#ls?.[event]?.fns.length ?? 0;
  }

  /** Calls the listeners of `event`; whether there were any. */
  // deno-lint-ignore no-explicit-any
  emit(event: string, ...args: any[]): boolean {
    const l = this.#ls?.[event];
    if (l === undefined || l.fns.length === 0) return false;
    if (l.fns.length === 1) {
      const fn = l.fns[0]!;
      if (l.once[0]) {
        l.fns.length = 0;
        l.once.length = 0;
      }
      fn(...args);
      return true;
    }
    const fns = l.fns.slice();
    const once = l.once.slice();
    for (let i = 0; i < fns.length; i++) {
      if (once[i]) this.off(event, fns[i]!);
      fns[i]!(...args);
    }
    return true;
  }

  /** Hook: a listener for `event` was added. */
  protected added(_event: string): void {}

  #add(event: string, fn: Listener, once: boolean): void {
    const m = this.#ls ??= Object.create(null) as Record<string, _Slot>;
    const l = m[event];
    if (l === undefined) m[event] = { fns: [fn], once: [once] };
    else {
      l.fns.push(fn);
      l.once.push(once);
    }
    this.added(event);
  }
}
