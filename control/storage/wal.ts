/**
 * An append-only write-ahead log in a directory of segment files, with group commit.
 * One process owns a WAL directory; nothing locks it, so the caller must not open it twice.
 *
 * ## Failed writes
 * Fail-stop. After any failed write, fsync or segment roll, the WAL rejects the failed
 * batch, everything queued behind it and every later append with {@linkcode WalFailedError}
 * until it is reopened. It also tries (best effort) to truncate the segment back to the last
 * durable offset. Retrying in place is unsafe: after a failed fsync Linux may have dropped the
 * dirty pages and marked them clean, so a later fsync "succeeding" proves nothing. Reopening
 * runs recovery, which truncates any half-written record as a torn tail. Records of a
 * rejected append may or may not be present after reopening, as after a crash; records of
 * a resolved append always are (after a crash too, unless it was appended with `sync: false`).
 *
 * The pieces live beside this module: `wal_types.ts` (bounds, shapes, errors), `wal_codec.ts`
 * (the on-disk frame format), `wal_segments.ts` (segment files) and `wal_recovery.ts` (the
 * recovery rules); this module is the log itself, its group commit and its failure handling.
 * @module
 */

import type { Logger } from "../../common/log.ts";
import { DenoFs, type StorageFile, type StorageFs, writeAll } from "./fs.ts";
import { encodeWalFrames } from "./wal_codec.ts";
import { listWalSegments, walPath, walSegmentName } from "./wal_segments.ts";
import { recoverWalSegments } from "./wal_recovery.ts";
import {
  type RecoveredRecord,
  type RecoveryReport,
  WAL_BLOCKED_MAX_APPENDS_DEFAULT,
  WAL_QUEUE_MAX_APPENDS_DEFAULT,
  WAL_QUEUE_MAX_BYTES_DEFAULT,
  WAL_SEGMENT_BYTES_DEFAULT,
  type WalAppendOptions,
  WalClosedError,
  WalFailedError,
  type WalOptions,
  WalOverloadedError,
  type WalPosition,
  type WalRecord,
  type WalStats,
} from "./wal_types.ts";

export * from "./wal_types.ts";
export { encodeWalFrames } from "./wal_codec.ts";
export { walSegmentName } from "./wal_segments.ts";

interface _Pending {
  frames: Uint8Array;
  records: number;
  sync: boolean;
  resolve: (p: WalPosition) => void;
  reject: (e: unknown) => void;
}

function _concat(parts: readonly Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function _errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A write-ahead log with group commit; create it with {@linkcode Wal.open}. */
export class Wal {
  readonly #dir: string;
  readonly #fs: StorageFs;
  readonly #log: Logger;
  readonly #segmentBytes: number;
  readonly #queueMaxBytes: number;
  readonly #queueMaxAppends: number;
  readonly #blockedMaxAppends: number;

  /** Sequence numbers of the segments on disk, ascending; the last is active. */
  #segments: number[];
  #file: StorageFile;
  /** Written size of the active segment (durable unless `#unsynced`). */
  #activeBytes: number;
  /** Whether the active segment holds written but not yet fsynced records. */
  #unsynced = false;

  #queue: _Pending[] = [];
  #queuedBytes = 0;
  /** Appends waiting for queue room, in call order. */
  #blocked: _Pending[] = [];
  #flushRunning = false;
  #flushDone: Promise<void> = Promise.resolve();
  #failed: WalFailedError | null = null;
  #closed = false;
  #releaseChain: Promise<unknown> = Promise.resolve();
  #stats: WalStats = { appends: 0, records: 0, bytes: 0, fsyncs: 0, maxBatchAppends: 0 };

  private constructor(
    dir: string,
    fs: StorageFs,
    log: Logger,
    opts: WalOptions,
    segments: number[],
    file: StorageFile,
    activeBytes: number,
  ) {
    this.#dir = dir;
    this.#fs = fs;
    this.#log = log;
    this.#segmentBytes = opts.segmentBytes ?? WAL_SEGMENT_BYTES_DEFAULT;
    this.#queueMaxBytes = opts.queueMaxBytes ?? WAL_QUEUE_MAX_BYTES_DEFAULT;
    this.#queueMaxAppends = opts.queueMaxAppends ?? WAL_QUEUE_MAX_APPENDS_DEFAULT;
    this.#blockedMaxAppends = opts.blockedMaxAppends ?? WAL_BLOCKED_MAX_APPENDS_DEFAULT;
    this.#segments = segments;
    this.#file = file;
    this.#activeBytes = activeBytes;
  }

  /**
   * Opens (creating if needed) the WAL in `dir`, recovers it and returns every valid record.
   *
   * Throws {@linkcode WalCorruptError} for damage other than a torn tail.
   */
  static async open(
    dir: string,
    opts: WalOptions,
    log: Logger,
  ): Promise<{ wal: Wal; records: RecoveredRecord[]; recovery: RecoveryReport }> {
    const fs = opts.fs ?? new DenoFs();
    for (
      const [name, v] of [
        ["segmentBytes", opts.segmentBytes],
        ["queueMaxBytes", opts.queueMaxBytes],
        ["queueMaxAppends", opts.queueMaxAppends],
        ["blockedMaxAppends", opts.blockedMaxAppends],
      ] as const
    ) {
      if (v !== undefined && !(Number.isInteger(v) && v > 0)) {
        throw new RangeError(`WalOptions.${name} must be a positive integer, got ${v}`);
      }
    }
    await fs.mkdir(dir);
    const seqs = await listWalSegments(dir, fs, log);
    const { records, tornTail, activeBytes } = await recoverWalSegments(dir, fs, log, seqs);

    if (seqs.length === 0) seqs.push(1);
    const activeSeq = seqs[seqs.length - 1]!;
    const file = await fs.open(walPath(dir, walSegmentName(activeSeq)), "append");
    try {
      // Make the truncation (or the new first segment) durable before anything is appended.
      if (tornTail !== null) await file.sync();
      if (records.length === 0 && activeBytes === 0) await fs.syncDir(dir);
    } catch (e) {
      file.close();
      throw e;
    }
    const wal = new Wal(dir, fs, log, opts, seqs, file, activeBytes);
    const recovery: RecoveryReport = {
      segments: seqs.length,
      firstSegment: seqs[0]!,
      lastSegment: activeSeq,
      records: records.length,
      tornTail,
    };
    log.info("WAL opened", {
      dir,
      segments: seqs.length,
      records: records.length,
      torn_tail: tornTail !== null,
    });
    return { wal, records, recovery };
  }

  /**
   * Appends records; resolves, with the position just past them, only after they are fsynced
   * (or only written, with `sync: false`).
   *
   * Concurrent calls share writes: while one write+fsync is in flight, later calls queue, and
   * the whole queue then goes out as one write and one fsync. Records of concurrent calls land
   * in call order, and one call's records are never split across segments. When the queue is
   * full (`queueMaxAppends`/`queueMaxBytes`) the call waits, which slows callers that await.
   */
  append(records: readonly WalRecord[], opts: WalAppendOptions = {}): Promise<WalPosition> {
    if (this.#closed) return Promise.reject(new WalClosedError());
    if (this.#failed) return Promise.reject(this.#failed);
    let frames: Uint8Array;
    try {
      frames = encodeWalFrames(records);
    } catch (e) {
      return Promise.reject(e);
    }
    const { promise, resolve, reject } = Promise.withResolvers<WalPosition>();
    const p: _Pending = {
      frames,
      records: records.length,
      sync: opts.sync ?? true,
      resolve,
      reject,
    };
    if (this.#blocked.length === 0 && this.#hasRoom(frames.length)) {
      this.#enqueue(p);
    } else if (this.#blocked.length >= this.#blockedMaxAppends) {
      return Promise.reject(new WalOverloadedError(this.#blocked.length));
    } else {
      this.#blocked.push(p);
    }
    return promise;
  }

  /**
   * Deletes whole segments older than `segment` (never the active one); returns how many.
   *
   * Call it after a snapshot covers every record in those segments, e.g. with the segment of
   * the position append() returned for the last record the snapshot includes. Records in
   * later segments that the snapshot also covers are left for the caller to skip on replay.
   * A caller that keeps state in records (such as a Raft hard state) must make sure its latest
   * value is in a kept segment, e.g. by appending it again before releasing.
   */
  releaseBefore(segment: number): Promise<number> {
    const run = this.#releaseChain.then(() => this.#release(segment));
    this.#releaseChain = run.catch(() => {});
    return run;
  }

  async #release(segment: number): Promise<number> {
    if (this.#closed) throw new WalClosedError();
    let removed = 0;
    // Oldest first with a directory sync after each removal, so a crash part way leaves a
    // contiguous run of segments rather than a gap, which open() would report as corruption.
    while (this.#segments.length > 1 && this.#segments[0]! < segment) {
      const seq = this.#segments[0]!;
      await this.#fs.remove(walPath(this.#dir, walSegmentName(seq)));
      this.#segments.shift();
      await this.#fs.syncDir(this.#dir);
      removed++;
    }
    if (removed > 0) {
      this.#log.info("WAL segments released", { removed, first_segment: this.#segments[0] });
    }
    return removed;
  }

  /** The durable end of the log. */
  get position(): WalPosition {
    return { segment: this.#activeSegment, offset: this.#activeBytes };
  }

  /** Sequence numbers of the segments on disk, oldest first. */
  get segments(): readonly number[] {
    return [...this.#segments];
  }

  /** The error that stopped this WAL, or null while it is healthy. */
  get failure(): WalFailedError | null {
    return this.#failed;
  }

  /** A copy of the group-commit counters. */
  stats(): WalStats {
    return { ...this.#stats };
  }

  /** Waits for every accepted append to finish (durably or not), then closes the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#flushDone;
    await this.#releaseChain;
    // Best effort: an unsynced record is by contract one whose loss is harmless.
    if (this.#unsynced && !this.#failed) await this.#file.sync().catch(() => {});
    this.#file.close();
  }

  get #activeSegment(): number {
    return this.#segments[this.#segments.length - 1]!;
  }

  #hasRoom(bytes: number): boolean {
    // An empty queue always admits, so a single append larger than the byte bound still goes.
    if (this.#queue.length === 0) return true;
    return this.#queue.length < this.#queueMaxAppends &&
      this.#queuedBytes + bytes <= this.#queueMaxBytes;
  }

  #enqueue(p: _Pending): void {
    this.#queue.push(p);
    this.#queuedBytes += p.frames.length;
    if (!this.#flushRunning) {
      this.#flushRunning = true;
      this.#flushDone = this.#flushLoop();
    }
  }

  #admitBlocked(): void {
    while (this.#blocked.length > 0 && this.#hasRoom(this.#blocked[0]!.frames.length)) {
      this.#enqueue(this.#blocked.shift()!);
    }
  }

  async #flushLoop(): Promise<void> {
    // Yield once so appends made in the same tick as the first one join its batch.
    await null;
    for (;;) {
      if (this.#queue.length === 0) {
        // Cleared with no await since the emptiness check, so an append can never find
        // the flag set while no loop is left to pick its record up.
        this.#flushRunning = false;
        return;
      }
      const batch = this.#queue;
      this.#queue = [];
      this.#queuedBytes = 0;
      this.#admitBlocked();
      if (this.#failed) {
        for (const p of batch) p.reject(this.#failed);
        continue;
      }
      try {
        const ends = await this.#writeBatch(batch);
        for (let i = 0; i < batch.length; i++) batch[i]!.resolve(ends[i]!);
      } catch (e) {
        await this.#fail(e);
        for (const p of batch) p.reject(this.#failed);
      }
    }
  }

  /**
   * Writes a batch with one write and, unless no append in it asked for durability, one fsync;
   * returns each append's end position.
   */
  async #writeBatch(batch: readonly _Pending[]): Promise<WalPosition[]> {
    let total = 0;
    let records = 0;
    let sync = false;
    for (const p of batch) {
      total += p.frames.length;
      records += p.records;
      sync ||= p.sync;
    }
    if (this.#activeBytes > 0 && this.#activeBytes + total > this.#segmentBytes) {
      await this.#roll();
    }
    const segment = this.#activeSegment;
    const ends: WalPosition[] = [];
    let end = this.#activeBytes;
    for (const p of batch) {
      end += p.frames.length;
      ends.push({ segment, offset: end });
    }
    await writeAll(this.#file, _concat(batch.map((p) => p.frames), total));
    if (sync) {
      this.#stats.fsyncs++;
      await this.#file.sync();
      this.#unsynced = false;
    } else {
      this.#unsynced = true;
    }
    this.#activeBytes = end;
    this.#stats.appends += batch.length;
    this.#stats.records += records;
    this.#stats.bytes += total;
    this.#stats.maxBatchAppends = Math.max(this.#stats.maxBatchAppends, batch.length);
    return ends;
  }

  async #roll(): Promise<void> {
    // Only the last segment may end in damage (a torn tail), so unsynced records go to disk
    // before the segment stops being the last one.
    if (this.#unsynced) {
      this.#stats.fsyncs++;
      await this.#file.sync();
      this.#unsynced = false;
    }
    const seq = this.#activeSegment + 1;
    const path = walPath(this.#dir, walSegmentName(seq));
    const file = await this.#fs.open(path, "create_new");
    this.#file.close();
    this.#file = file;
    this.#segments.push(seq);
    this.#activeBytes = 0;
    await this.#fs.syncDir(this.#dir);
    this.#log.debug("WAL segment rolled", { segment: seq });
  }

  async #fail(e: unknown): Promise<void> {
    const path = walPath(this.#dir, walSegmentName(this.#activeSegment));
    this.#failed = new WalFailedError(
      `WAL write to ${path} failed after durable offset ${this.#activeBytes}: ${
        _errMessage(e)
      }; refusing further appends until reopened`,
      e,
    );
    this.#log.error("WAL write failed; appends refused until reopen", {
      file: path,
      offset: this.#activeBytes,
      error: _errMessage(e),
    });
    for (const p of this.#queue) p.reject(this.#failed);
    for (const p of this.#blocked) p.reject(this.#failed);
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#blocked = [];
    this.#file.close();
    try {
      // Best effort: remove the half-written bytes now so the file is clean even before
      // recovery runs. If this fails too, open() still treats them as a torn tail.
      await this.#fs.truncate(path, this.#activeBytes);
    } catch (te) {
      this.#log.warn("WAL truncate after failed write also failed", {
        file: path,
        offset: this.#activeBytes,
        error: _errMessage(te),
      });
    }
  }
}
