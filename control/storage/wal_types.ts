/**
 * The WAL's vocabulary: its size bounds, the record and position shapes, the options, and the
 * errors it rejects with. Shared by the codec, the recovery and the {@linkcode Wal} itself.
 * @module
 */
import type { StorageFs } from "./fs.ts";

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
