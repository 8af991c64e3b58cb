/**
 * A request body read from the client's h2 stream and written to the try in progress, with a
 * copy kept while it is small, so a failed try can be sent again from its first byte. A body
 * that outgrows the copy still flows; it just cannot be replayed any more.
 * @module
 */

/** Where the body comes from: the client's stream. */
interface _Source {
  // deno-lint-ignore no-explicit-any
  on(event: string, fn: (...args: any[]) => void): unknown;
  pause(): unknown;
  resume(): unknown;
}

/** Where the body goes: the request stream of one try. */
interface _Target {
  write(chunk: Uint8Array): boolean;
  end(): void;
  once(event: "drain", fn: () => void): unknown;
}

/** A source that never sends: the one {@linkcode NO_BODY} reads. */
const _SILENT: _Source = { on: () => {}, pause: () => {}, resume: () => {} };

/** The request body of one h2 call. */
export class BodyTap {
  /** Body bytes read from the client. */
  bytesIn = 0;
  /** The client ended the body. */
  ended = false;
  readonly #src: _Source;
  readonly #max: number;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #replay: Uint8Array[] | null = [];
  #replayBytes = 0;
  #target: _Target | null = null;
  #attached = false;
  #paused = false;

  /**
   * Starts reading `src`; keeps a replayable copy of up to `maxReplayBytes`. `ended`: the
   * request's headers already ended the stream (no body), so a try can say so in its own.
   */
  constructor(src: _Source, maxReplayBytes: number, ended = false) {
    this.#src = src;
    this.#max = maxReplayBytes;
    this.ended = ended;
    // A request whose headers ended it has no body to listen for (most calls).
    if (ended) return;
    src.on("data", (c: Uint8Array) => this.#onData(c));
    src.on("end", () => {
      this.ended = true;
      this.#target?.end();
    });
  }

  /** Whether every byte read so far is still kept, so a new try can send the body whole. */
  get replayable(): boolean {
    return this.#replay !== null;
  }

  /** Whether the body is over and had no byte (the try's headers can end the stream). */
  get emptyAndEnded(): boolean {
    return this.ended && this.bytesIn === 0;
  }

  /**
   * Sends the body to `target`: everything read so far (the kept copy on a second try), then
   * the rest as it arrives, ending it when the client ends. Call only when
   * {@linkcode replayable} holds, or for the first try.
   */
  attach(target: _Target): void {
    if (this.emptyAndEnded) {
      // Nothing to send, and nothing kept: {@linkcode NO_BODY} is shared.
      target.end();
      return;
    }
    const chunks = this.#attached ? this.#replay ?? [] : this.#queue;
    this.#attached = true;
    this.#queue = [];
    this.#queued = 0;
    this.#target = target;
    for (const c of chunks) target.write(c);
    if (this.ended) target.end();
    this.#resume();
  }

  /** Stops writing to the current try (it failed); data read meanwhile waits for the next. */
  detach(): void {
    this.#target = null;
  }

  #onData(c: Uint8Array): void {
    this.bytesIn += c.length;
    if (this.#replay !== null) {
      this.#replay.push(c);
      this.#replayBytes += c.length;
      if (this.#replayBytes > this.#max) {
        this.#replay = null;
        this.#replayBytes = 0;
      }
    }
    const t = this.#target;
    if (t === null) {
      this.#queue.push(c);
      this.#queued += c.length;
      // No try to take it yet: h2 flow control holds the client back beyond this.
      if (this.#queued > this.#max) this.#pause(null);
    } else if (!t.write(c)) {
      this.#pause(t);
    }
  }

  #pause(t: _Target | null): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#src.pause();
    t?.once("drain", () => this.#resume());
  }

  #resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#src.resume();
  }
}

/**
 * The body of every request whose headers ended it (most calls), shared: it is empty and
 * ended, so nothing is ever read into it, attached to it, or kept by it.
 */
export const NO_BODY: BodyTap = new BodyTap(_SILENT, 0, true);
