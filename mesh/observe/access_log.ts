/**
 * The access log's writer: lines are queued in memory and written in batches by a background
 * flush, so a request never waits for the disk. A full disk or an unwritable file drops the
 * batch, is counted and logged (once per failure spell), and the file is opened again later;
 * `reopen()` (SIGHUP, after logrotate moved the file) starts a new file at the same path.
 * @module
 */
import type { Logger } from "../../common/log.ts";

/** Where lines go: a file path, or `stdout`. */
export type AccessLogTarget = string;

/** Most bytes queued before new lines are dropped (and counted). */
export const DEFAULT_MAX_QUEUED_BYTES = 4 * 1024 * 1024;
/** How long a line may wait for its batch, in ms. */
export const FLUSH_INTERVAL_MS = 200;
/** After a failed open or write, how long before the file is tried again, in ms. */
export const RETRY_OPEN_MS = 1_000;

/** Counters of an {@linkcode AccessLog}. */
export interface AccessLogStats {
  /** Lines written. */
  written: number;
  /** Lines lost: queue full, or their batch failed to write. */
  dropped: number;
  /** Failed opens and writes. */
  errors: number;
}

/** Options of {@linkcode AccessLog}. */
export interface AccessLogOptions {
  /** Where failures are reported. */
  logger: Logger;
  /** @default DEFAULT_MAX_QUEUED_BYTES */
  maxQueuedBytes?: number;
  /** @default FLUSH_INTERVAL_MS */
  flushIntervalMs?: number;
}

interface _Sink {
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

const _enc = new TextEncoder();

/** A buffered, non-blocking line writer for the access log. */
export class AccessLog {
  readonly #target: AccessLogTarget;
  readonly #log: Logger;
  readonly #maxQueued: number;
  readonly #interval: number;
  #queue: string[] = [];
  #queued = 0;
  #sink: _Sink | null = null;
  #retryAt = 0;
  #failing = false;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #flushing: Promise<void> | null = null;
  #closed = false;
  #reopen = false;
  readonly stats: AccessLogStats = { written: 0, dropped: 0, errors: 0 };

  /** Writes to `target` (a path, appended to and created 0640 if missing, or `stdout`). */
  constructor(target: AccessLogTarget, opts: AccessLogOptions) {
    this.#target = target;
    this.#log = opts.logger;
    this.#maxQueued = opts.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    this.#interval = opts.flushIntervalMs ?? FLUSH_INTERVAL_MS;
  }

  /** Queues one line (without its newline); never blocks, drops when the queue is full. */
  write(line: string): void {
    if (this.#closed) return;
    if (this.#queued + line.length + 1 > this.#maxQueued) {
      this.stats.dropped++;
      return;
    }
    this.#queue.push(line);
    this.#queued += line.length + 1;
    if (this.#timer === null && this.#flushing === null) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        void this.flush();
      }, this.#interval);
      Deno.unrefTimer(this.#timer as unknown as number);
    }
  }

  /** Closes the file at the next write and opens the path again (after a logrotate move). */
  reopen(): void {
    this.#reopen = true;
    this.#retryAt = 0;
  }

  /** Writes everything queued now; resolves when done (failures are counted, not thrown). */
  flush(): Promise<void> {
    this.#flushing ??= this.#drain().finally(() => {
      this.#flushing = null;
      if (this.#queue.length > 0 && !this.#closed && this.#timer === null) {
        this.#timer = setTimeout(() => {
          this.#timer = null;
          void this.flush();
        }, this.#interval);
        Deno.unrefTimer(this.#timer as unknown as number);
      }
    });
    return this.#flushing;
  }

  /** Flushes what is queued and closes the file. */
  async close(): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.flush();
    this.#closed = true;
    this.#sink?.close();
    this.#sink = null;
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const lines = this.#queue;
      this.#queue = [];
      this.#queued = 0;
      const sink = this.#open();
      if (sink === null) {
        this.stats.dropped += lines.length;
        return;
      }
      const bytes = _enc.encode(lines.join("\n") + "\n");
      try {
        let off = 0;
        while (off < bytes.length) off += await sink.write(bytes.subarray(off));
        this.stats.written += lines.length;
        if (this.#failing) {
          this.#failing = false;
          this.#log.info("access log writable again", { path: this.#target });
        }
      } catch (e) {
        this.stats.dropped += lines.length;
        this.#fail("access log write failed; lines dropped", e);
        this.#closeSink();
        return;
      }
    }
  }

  #open(): _Sink | null {
    if (this.#reopen) {
      this.#reopen = false;
      this.#closeSink();
    }
    if (this.#sink !== null) return this.#sink;
    if (Date.now() < this.#retryAt) return null;
    if (this.#target === "stdout") {
      this.#sink = { write: (p) => Deno.stdout.write(p), close: () => {} };
      return this.#sink;
    }
    try {
      this.#sink = Deno.openSync(this.#target, {
        append: true,
        create: true,
        mode: 0o640,
      });
    } catch (e) {
      this.#fail("cannot open the access log; lines dropped", e);
      return null;
    }
    return this.#sink;
  }

  #closeSink(): void {
    try {
      this.#sink?.close();
    } catch {
      // Already closed.
    }
    this.#sink = null;
  }

  #fail(msg: string, e: unknown): void {
    this.stats.errors++;
    this.#retryAt = Date.now() + RETRY_OPEN_MS;
    if (!this.#failing) {
      this.#failing = true;
      this.#log.error(msg, { path: this.#target, err: e as Error });
    }
  }
}
