/**
 * An append-only write-ahead log in a directory of segment files, with group commit.
 *
 * ## On-disk format
 * A segment is `wal-<seq>.log` (`seq` zero-padded to 10 digits, starting at 1, contiguous).
 * It has no header: it is a sequence of frames, all integers little-endian:
 *
 * ```
 * [u32 body length][u32 CRC-32C of body][body = u8 kind, payload bytes]
 * ```
 *
 * The body is never empty (it holds the kind), so a length of 0 is always invalid; that is
 * what makes a zero-filled (preallocated, or extended-but-not-written) tail detectable.
 * A batch of records is never split across segments; a segment rolls over before a batch
 * that would take it past `segmentBytes`.
 *
 * ## Recovery
 * - Any invalid frame in a segment that is not the last one: {@linkcode WalCorruptError}.
 * - In the last segment, the first invalid frame starts a *torn tail* only when no valid
 *   frame can be found at any later byte offset; the tail is then truncated and reported.
 *   If a valid frame follows, the damage is in the middle of the log:
 *   {@linkcode WalCorruptError}. Valid data is never dropped silently.
 * - A missing segment between two present ones: {@linkcode WalCorruptError}.
 *
 * Known limit of this rule: if power fails between a batch's write and its fsync and the
 * kernel had written back a later page of that batch but not an earlier one, a valid frame
 * follows the damage and open() reports corruption although nothing acknowledged was lost.
 * That errs on the safe side (the node refuses to start rather than dropping data).
 *
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
 * @module
 */

import type { Logger } from "../../common/log.ts";
import { crc32c } from "./crc32c.ts";
import { DenoFs, type StorageFile, type StorageFs, writeAll } from "./fs.ts";

/** Bytes of the frame header: u32 length + u32 CRC. */
export const WAL_FRAME_HEADER_BYTES = 8;
/** Largest payload one record may carry; a larger length on disk is treated as damage. */
export const WAL_RECORD_MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;
/** Largest record kind (it is stored in one byte). */
export const WAL_KIND_MAX = 255;
/** Default segment size at which the log rolls over to a new file. */
export const WAL_SEGMENT_BYTES_DEFAULT = 64 * 1024 * 1024;
/** Default bound on bytes queued for the next write while one is in flight. */
export const WAL_QUEUE_MAX_BYTES_DEFAULT = 16 * 1024 * 1024;
/** Default bound on append() calls queued for the next write while one is in flight. */
export const WAL_QUEUE_MAX_APPENDS_DEFAULT = 4096;
/** Default bound on append() calls waiting for queue room; beyond it append() rejects. */
export const WAL_BLOCKED_MAX_APPENDS_DEFAULT = 65536;

const _BODY_MAX_BYTES = WAL_RECORD_MAX_PAYLOAD_BYTES + 1;
const _SEGMENT_RE = /^wal-(\d+)\.log$/;
const _SEQ_DIGITS = 10;

/** One record: a small caller-chosen kind (entry, hard state, ...) and opaque bytes. */
export interface WalRecord {
  /** Caller-defined record type, an integer in 0..255. */
  kind: number;
  /** Opaque payload. */
  payload: Uint8Array;
}

/**
 * A record read back at open, with the segment it lives in (for {@linkcode Wal.releaseBefore}).
 * Payloads are views into the segment's read buffer; copy one to keep it alone.
 */
export interface RecoveredRecord extends WalRecord {
  /** Sequence number of the segment holding the record. */
  segment: number;
}

/** A durable position in the log: a segment and a byte offset within it. */
export interface WalPosition {
  /** Segment sequence number. */
  segment: number;
  /** Byte offset just past the record(s) in question. */
  offset: number;
}

/** A torn tail found and truncated at open. */
export interface TornTail {
  /** Path of the segment. */
  file: string;
  /** Offset the segment was truncated to. */
  offset: number;
  /** Bytes removed. */
  droppedBytes: number;
  /** Why the first dropped frame was invalid. */
  reason: string;
}

/** What open() found. */
export interface RecoveryReport {
  /** Number of segment files. */
  segments: number;
  /** Sequence number of the oldest segment. */
  firstSegment: number;
  /** Sequence number of the active (newest) segment. */
  lastSegment: number;
  /** Valid records read. */
  records: number;
  /** The torn tail that was truncated, or null for a clean log. */
  tornTail: TornTail | null;
}

/** Counters for observing group commit. */
export interface WalStats {
  /** append() calls that resolved. */
  appends: number;
  /** Records made durable. */
  records: number;
  /** Frame bytes made durable. */
  bytes: number;
  /** Write+fsync rounds (each is one write and one fsync of the active segment). */
  fsyncs: number;
  /** Most append() calls that shared one fsync. */
  maxBatchAppends: number;
}

/** Options for {@linkcode Wal.open}. */
export interface WalOptions {
  /**
   * Roll over to a new segment before a batch would take the current one past this size.
   * @default WAL_SEGMENT_BYTES_DEFAULT
   */
  segmentBytes?: number;
  /** Bound on bytes queued behind an in-flight write. @default WAL_QUEUE_MAX_BYTES_DEFAULT */
  queueMaxBytes?: number;
  /**
   * Bound on append() calls queued behind an in-flight write.
   * @default WAL_QUEUE_MAX_APPENDS_DEFAULT
   */
  queueMaxAppends?: number;
  /** Bound on append() calls waiting for queue room. @default WAL_BLOCKED_MAX_APPENDS_DEFAULT */
  blockedMaxAppends?: number;
  /** File system to use. @default new DenoFs() */
  fs?: StorageFs;
}

/** The log contains damage that is not a torn tail; nothing was truncated. */
export class WalCorruptError extends Error {
  /** Path of the damaged segment. */
  readonly file: string;
  /** Byte offset of the first invalid frame. */
  readonly offset: number;
  /** Creates the error. */
  constructor(file: string, offset: number, reason: string) {
    super(`WAL corrupt: ${file} at byte ${offset}: ${reason}`);
    this.name = "WalCorruptError";
    this.file = file;
    this.offset = offset;
  }
}

/** A write or fsync failed; the WAL refuses appends until it is reopened. */
export class WalFailedError extends Error {
  /** Creates the error; `cause` is the underlying I/O error. */
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.name = "WalFailedError";
  }
}

/** append() after close(). */
export class WalClosedError extends Error {
  /** Creates the error. */
  constructor() {
    super("WAL is closed");
    this.name = "WalClosedError";
  }
}

/** Too many append() calls are already waiting for queue room. */
export class WalOverloadedError extends Error {
  /** Creates the error. */
  constructor(blocked: number) {
    super(`WAL overloaded: ${blocked} appends already waiting for queue room`);
    this.name = "WalOverloadedError";
  }
}

/** Options of one {@linkcode Wal.append}. */
export interface WalAppendOptions {
  /**
   * Whether the records must be durable before append() resolves. With `false` they are
   * written (in order, to the page cache) but not fsynced: for state whose loss in a crash is
   * harmless, such as a Raft hard state whose only change is the commit index. A later synced
   * append, a segment roll or close() makes them durable too. @default true
   */
  sync?: boolean;
}

interface _Pending {
  frames: Uint8Array;
  records: number;
  sync: boolean;
  resolve: (p: WalPosition) => void;
  reject: (e: unknown) => void;
}

interface _Scan {
  records: { kind: number; payload: Uint8Array }[];
  /** Offset of the first invalid frame, or null when the whole buffer is valid. */
  badAt: number | null;
  reason: string;
}

/** Returns the file name of segment `seq`. */
export function walSegmentName(seq: number): string {
  return `wal-${String(seq).padStart(_SEQ_DIGITS, "0")}.log`;
}

/** Encodes records as frames; throws RangeError for an invalid kind or oversized payload. */
export function encodeWalFrames(records: readonly WalRecord[]): Uint8Array {
  let total = 0;
  for (const r of records) {
    if (!Number.isInteger(r.kind) || r.kind < 0 || r.kind > WAL_KIND_MAX) {
      throw new RangeError(
        `WAL record kind must be an integer in 0..${WAL_KIND_MAX}, got ${r.kind}`,
      );
    }
    if (r.payload.length > WAL_RECORD_MAX_PAYLOAD_BYTES) {
      throw new RangeError(
        `WAL record payload is ${r.payload.length} bytes, max ${WAL_RECORD_MAX_PAYLOAD_BYTES}`,
      );
    }
    total += WAL_FRAME_HEADER_BYTES + 1 + r.payload.length;
  }
  const buf = new Uint8Array(total);
  const dv = new DataView(buf.buffer);
  let off = 0;
  for (const r of records) {
    const bodyLen = 1 + r.payload.length;
    const body = off + WAL_FRAME_HEADER_BYTES;
    buf[body] = r.kind;
    buf.set(r.payload, body + 1);
    dv.setUint32(off, bodyLen, true);
    dv.setUint32(off + 4, crc32c(buf.subarray(body, body + bodyLen)), true);
    off = body + bodyLen;
  }
  return buf;
}

/** Returns why the frame at `off` is invalid, or null when it is valid. */
function _frameError(buf: Uint8Array, dv: DataView, off: number): string | null {
  const left = buf.length - off;
  if (left < WAL_FRAME_HEADER_BYTES) return `incomplete frame header (${left} bytes)`;
  const len = dv.getUint32(off, true);
  if (len === 0) return "zero length (zero-filled or unwritten space)";
  if (len > _BODY_MAX_BYTES) return `length ${len} exceeds the maximum ${_BODY_MAX_BYTES}`;
  if (len > left - WAL_FRAME_HEADER_BYTES) {
    return `record of ${len} bytes extends past the end of the file`;
  }
  const body = buf.subarray(off + WAL_FRAME_HEADER_BYTES, off + WAL_FRAME_HEADER_BYTES + len);
  const want = dv.getUint32(off + 4, true);
  const got = crc32c(body);
  if (got !== want) {
    return `checksum mismatch (stored ${want.toString(16)}, computed ${got.toString(16)})`;
  }
  return null;
}

function _scan(buf: Uint8Array): _Scan {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const records: _Scan["records"] = [];
  let off = 0;
  while (off < buf.length) {
    const err = _frameError(buf, dv, off);
    if (err !== null) return { records, badAt: off, reason: err };
    const len = dv.getUint32(off, true);
    const body = off + WAL_FRAME_HEADER_BYTES;
    records.push({ kind: buf[body]!, payload: buf.subarray(body + 1, body + len) });
    off = body + len;
  }
  return { records, badAt: null, reason: "" };
}

/**
 * Returns the first offset after `from` holding a valid frame, or -1.
 *
 * This is what tells a torn tail (nothing valid after the damage) from damage in the middle.
 * Candidates are cheap to reject (the length must fit in the rest of the file), so on zeros
 * or random bytes the scan is linear; a false positive can only make recovery stricter.
 */
function _nextValidFrame(buf: Uint8Array, from: number): number {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let p = from + 1; p + WAL_FRAME_HEADER_BYTES < buf.length; p++) {
    const len = dv.getUint32(p, true);
    if (len === 0 || len > buf.length - p - WAL_FRAME_HEADER_BYTES) continue;
    if (_frameError(buf, dv, p) === null) return p;
  }
  return -1;
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
    const seqs: number[] = [];
    for (const name of await fs.readDir(dir)) {
      const m = _SEGMENT_RE.exec(name);
      if (m) seqs.push(Number(m[1]));
      else if (name.startsWith("wal-")) log.warn("ignoring unexpected file in WAL dir", { name });
    }
    seqs.sort((a, b) => a - b);
    for (let i = 1; i < seqs.length; i++) {
      const want = seqs[i - 1]! + 1;
      if (seqs[i] !== want) {
        throw new WalCorruptError(
          _join(dir, walSegmentName(want)),
          0,
          `segment is missing between ${walSegmentName(seqs[i - 1]!)} and ${
            walSegmentName(seqs[i]!)
          }`,
        );
      }
    }

    const records: RecoveredRecord[] = [];
    let tornTail: TornTail | null = null;
    let activeBytes = 0;
    for (let i = 0; i < seqs.length; i++) {
      const seq = seqs[i]!;
      const path = _join(dir, walSegmentName(seq));
      const buf = await fs.readFile(path);
      const scan = _scan(buf);
      for (const r of scan.records) {
        records.push({ kind: r.kind, payload: r.payload, segment: seq });
      }
      activeBytes = buf.length;
      if (scan.badAt === null) continue;
      if (i !== seqs.length - 1) {
        throw new WalCorruptError(path, scan.badAt, `${scan.reason} (not the last segment)`);
      }
      const next = _nextValidFrame(buf, scan.badAt);
      if (next >= 0) {
        throw new WalCorruptError(
          path,
          scan.badAt,
          `${scan.reason}, but a valid record follows at byte ${next}`,
        );
      }
      tornTail = {
        file: path,
        offset: scan.badAt,
        droppedBytes: buf.length - scan.badAt,
        reason: scan.reason,
      };
      log.warn("WAL torn tail truncated", {
        file: path,
        offset: scan.badAt,
        dropped_bytes: tornTail.droppedBytes,
        reason: scan.reason,
      });
      await fs.truncate(path, scan.badAt);
      activeBytes = scan.badAt;
    }

    if (seqs.length === 0) seqs.push(1);
    const activeSeq = seqs[seqs.length - 1]!;
    const file = await fs.open(_join(dir, walSegmentName(activeSeq)), "append");
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
      await this.#fs.remove(_join(this.#dir, walSegmentName(seq)));
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
    const path = _join(this.#dir, walSegmentName(seq));
    const file = await this.#fs.open(path, "create_new");
    this.#file.close();
    this.#file = file;
    this.#segments.push(seq);
    this.#activeBytes = 0;
    await this.#fs.syncDir(this.#dir);
    this.#log.debug("WAL segment rolled", { segment: seq });
  }

  async #fail(e: unknown): Promise<void> {
    const path = _join(this.#dir, walSegmentName(this.#activeSegment));
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

function _join(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}
