/**
 * Test support: an in-memory byte pipe to run real mux sessions over, deterministically.
 * Used by the mux tests; it lives under tests/ because the product never uses it.
 * @module
 */
import type { MuxTransport } from "../mesh/mux/session.ts";

const ADDR: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port: 1 };

/** One end of an in-memory byte pipe; counts writes so batching can be checked. */
export class MemEnd implements MuxTransport {
  readonly localAddr = ADDR;
  readonly remoteAddr = ADDR;
  peer!: MemEnd;
  writes = 0;
  closed = false;
  #chunks: Uint8Array[] = [];
  #eof = false;
  #waiter: (() => void) | null = null;

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#eof || this.closed) return null;
      await new Promise<void>((r) => (this.#waiter = r));
    }
    const c = this.#chunks[0]!;
    const k = Math.min(c.length, p.length);
    p.set(c.subarray(0, k));
    if (k === c.length) this.#chunks.shift();
    else this.#chunks[0] = c.subarray(k);
    return k;
  }

  write(p: Uint8Array): Promise<number> {
    if (this.closed || this.peer.closed) return Promise.reject(new Deno.errors.BrokenPipe("x"));
    this.writes++;
    this.peer.deliver(p.slice());
    return Promise.resolve(p.length);
  }

  deliver(c: Uint8Array): void {
    this.#chunks.push(c);
    this.#wake();
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = null;
    w?.();
  }

  close(): void {
    this.closed = true;
    this.peer.#eof = true;
    this.peer.#wake();
    this.#wake();
  }
}

/** Two connected ends of an in-memory byte pipe. */
export function memPipe(): [MemEnd, MemEnd] {
  const a = new MemEnd();
  const b = new MemEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
