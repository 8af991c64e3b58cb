/**
 * Snapshots written atomically into a directory, newest found by name, each checksummed.
 *
 * ## On-disk format
 * A snapshot is `snap-<index>-<term>.snap` (both zero-padded to 20 digits, so names sort by
 * index then term). Integers are little-endian:
 *
 * ```
 * [8 bytes magic "SKNSNAP1"][u32 header length][u32 CRC-32C of header]
 * [header: UTF-8 JSON {index, term, metadata, payloadBytes, payloadCrc}]
 * [payload]
 * ```
 *
 * ## Atomicity
 * save() writes `<name>.tmp`, fsyncs it, renames it over `<name>`, then fsyncs the directory.
 * A crash leaves either no new snapshot or a complete one, plus possibly a `.tmp` file, which
 * open() removes.
 *
 * One process owns a snapshot directory (open() deletes `.tmp` files it finds there).
 *
 * ## A corrupt newest snapshot is an error
 * load() throws {@linkcode SnapshotCorruptError} when the newest snapshot is damaged, even
 * when an older valid one exists. A snapshot reached the disk with an fsync before its rename,
 * so damage means the disk lost data; and the caller may already have released the WAL
 * segments that led from the older snapshot to the newer one, so silently falling back could
 * forget committed writes. An operator who knows better can move the bad file away.
 * @module
 */

import { z } from "zod";
import type { Logger } from "../../common/log.ts";
import { crc32c } from "./crc32c.ts";
import { DenoFs, isNotFound, type StorageFs, writeAll } from "./fs.ts";

/** How many snapshots save() keeps, newest first; older ones are deleted. */
export const SNAPSHOT_KEEP_DEFAULT = 3;
/** Largest header (mostly the caller's metadata JSON) a snapshot may carry. */
export const SNAPSHOT_HEADER_MAX_BYTES = 1024 * 1024;
/** Largest payload a snapshot may carry; a larger size in a header is treated as damage. */
export const SNAPSHOT_PAYLOAD_MAX_BYTES = 1024 * 1024 * 1024;

const _MAGIC = new TextEncoder().encode("SKNSNAP1");
const _PREFIX_BYTES = _MAGIC.length + 8;
const _NAME_RE = /^snap-(\d{20})-(\d{20})\.snap$/;
const _TMP_SUFFIX = ".tmp";
const _NUM_DIGITS = 20;

const _Header = z.object({
  index: z.number().int().nonnegative(),
  term: z.number().int().nonnegative(),
  metadata: z.unknown(),
  payloadBytes: z.number().int().nonnegative().max(SNAPSHOT_PAYLOAD_MAX_BYTES),
  payloadCrc: z.number().int().nonnegative().max(0xffffffff),
});

/** What a snapshot is about: the last log index and term it covers, and caller metadata. */
export interface SnapshotMeta {
  /** Index of the last log entry the snapshot includes. */
  index: number;
  /** Term of that entry. */
  term: number;
  /** Caller-defined JSON metadata (e.g. the cluster configuration). @default null */
  metadata?: unknown;
}

/** A snapshot to save. */
export interface SnapshotInput extends SnapshotMeta {
  /** The serialized state machine. */
  payload: Uint8Array;
}

/** A snapshot read back by load(). */
export interface Snapshot {
  /** Index of the last log entry the snapshot includes. */
  index: number;
  /** Term of that entry. */
  term: number;
  /** Caller metadata as saved (null when none was given). */
  metadata: unknown;
  /** The serialized state machine. */
  payload: Uint8Array;
  /** Path of the file it came from. */
  file: string;
}

/** A snapshot file on disk, known from its name. */
export interface SnapshotInfo {
  /** Index from the file name. */
  index: number;
  /** Term from the file name. */
  term: number;
  /** Path of the file. */
  file: string;
}

/** Options for {@linkcode SnapshotStore.open}. */
export interface SnapshotStoreOptions {
  /** Snapshots to keep. @default SNAPSHOT_KEEP_DEFAULT */
  keep?: number;
  /** File system to use. @default new DenoFs() */
  fs?: StorageFs;
}

/** The newest snapshot is damaged; nothing was deleted. */
export class SnapshotCorruptError extends Error {
  /** Path of the damaged file. */
  readonly file: string;
  /** Creates the error. */
  constructor(file: string, reason: string) {
    super(`snapshot corrupt: ${file}: ${reason}`);
    this.name = "SnapshotCorruptError";
    this.file = file;
  }
}

/** Returns the file name of the snapshot at `index`/`term`. */
export function snapshotName(index: number, term: number): string {
  const pad = (n: number) => String(n).padStart(_NUM_DIGITS, "0");
  return `snap-${pad(index)}-${pad(term)}.snap`;
}

/** Encodes a snapshot file. */
export function encodeSnapshot(s: SnapshotInput): Uint8Array {
  const header = new TextEncoder().encode(JSON.stringify({
    index: s.index,
    term: s.term,
    metadata: s.metadata ?? null,
    payloadBytes: s.payload.length,
    payloadCrc: crc32c(s.payload),
  }));
  if (header.length > SNAPSHOT_HEADER_MAX_BYTES) {
    throw new RangeError(
      `snapshot header is ${header.length} bytes, max ${SNAPSHOT_HEADER_MAX_BYTES}`,
    );
  }
  const out = new Uint8Array(_PREFIX_BYTES + header.length + s.payload.length);
  const dv = new DataView(out.buffer);
  out.set(_MAGIC, 0);
  dv.setUint32(_MAGIC.length, header.length, true);
  dv.setUint32(_MAGIC.length + 4, crc32c(header), true);
  out.set(header, _PREFIX_BYTES);
  out.set(s.payload, _PREFIX_BYTES + header.length);
  return out;
}

/** Decodes a snapshot file; throws {@linkcode SnapshotCorruptError} on any damage. */
export function decodeSnapshot(file: string, buf: Uint8Array): Snapshot {
  const bad = (reason: string) => new SnapshotCorruptError(file, reason);
  if (buf.length < _PREFIX_BYTES) throw bad(`file is ${buf.length} bytes, shorter than a header`);
  for (let i = 0; i < _MAGIC.length; i++) {
    if (buf[i] !== _MAGIC[i]) throw bad("bad magic: not a skein snapshot");
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = dv.getUint32(_MAGIC.length, true);
  if (headerLen > SNAPSHOT_HEADER_MAX_BYTES || _PREFIX_BYTES + headerLen > buf.length) {
    throw bad(`header length ${headerLen} does not fit the file of ${buf.length} bytes`);
  }
  const headerBytes = buf.subarray(_PREFIX_BYTES, _PREFIX_BYTES + headerLen);
  if (crc32c(headerBytes) !== dv.getUint32(_MAGIC.length + 4, true)) {
    throw bad("header checksum mismatch");
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBytes));
  } catch (e) {
    throw bad(`header is not JSON: ${e instanceof Error ? e.message : e}`);
  }
  const parsed = _Header.safeParse(json);
  if (!parsed.success) throw bad(`invalid header: ${parsed.error.message}`);
  const h = parsed.data;
  const payloadStart = _PREFIX_BYTES + headerLen;
  if (buf.length !== payloadStart + h.payloadBytes) {
    throw bad(
      `payload is ${buf.length - payloadStart} bytes, header says ${h.payloadBytes}`,
    );
  }
  const payload = buf.subarray(payloadStart);
  if (crc32c(payload) !== h.payloadCrc) throw bad("payload checksum mismatch");
  return { index: h.index, term: h.term, metadata: h.metadata ?? null, payload, file };
}

/** A directory of snapshots; create it with {@linkcode SnapshotStore.open}. */
export class SnapshotStore {
  readonly #dir: string;
  readonly #fs: StorageFs;
  readonly #log: Logger;
  readonly #keep: number;
  #saveChain: Promise<unknown> = Promise.resolve();

  private constructor(dir: string, fs: StorageFs, log: Logger, keep: number) {
    this.#dir = dir;
    this.#fs = fs;
    this.#log = log;
    this.#keep = keep;
  }

  /** Opens (creating if needed) a snapshot directory and removes temp files a crash left. */
  static async open(
    dir: string,
    opts: SnapshotStoreOptions,
    log: Logger,
  ): Promise<SnapshotStore> {
    const keep = opts.keep ?? SNAPSHOT_KEEP_DEFAULT;
    if (!Number.isInteger(keep) || keep < 1) {
      throw new RangeError(`SnapshotStoreOptions.keep must be a positive integer, got ${keep}`);
    }
    const fs = opts.fs ?? new DenoFs();
    await fs.mkdir(dir);
    const store = new SnapshotStore(dir, fs, log, keep);
    let removed = 0;
    for (const name of await fs.readDir(dir)) {
      if (!name.endsWith(_TMP_SUFFIX)) continue;
      await fs.remove(_join(dir, name));
      log.warn("removed unfinished snapshot left by a crash", { file: _join(dir, name) });
      removed++;
    }
    if (removed > 0) await fs.syncDir(dir);
    return store;
  }

  /** Lists snapshot files by name, newest first; an absent directory lists as empty. */
  async list(): Promise<SnapshotInfo[]> {
    let names: string[];
    try {
      names = await this.#fs.readDir(this.#dir);
    } catch (e) {
      if (isNotFound(e)) return [];
      throw e;
    }
    const out: SnapshotInfo[] = [];
    for (const name of names) {
      const m = _NAME_RE.exec(name);
      if (!m) continue;
      out.push({ index: Number(m[1]), term: Number(m[2]), file: _join(this.#dir, name) });
    }
    return out.sort((a, b) => b.index - a.index || b.term - a.term);
  }

  /**
   * Returns the newest snapshot, or null when there is none (also when the directory is gone).
   *
   * Throws {@linkcode SnapshotCorruptError} when the newest one is damaged; see the module doc.
   */
  async load(): Promise<Snapshot | null> {
    const newest = (await this.list())[0];
    if (!newest) return null;
    let buf: Uint8Array;
    try {
      buf = await this.#fs.readFile(newest.file);
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
    const snap = decodeSnapshot(newest.file, buf);
    if (snap.index !== newest.index || snap.term !== newest.term) {
      throw new SnapshotCorruptError(
        newest.file,
        `header says index ${snap.index} term ${snap.term}, the file name disagrees`,
      );
    }
    return snap;
  }

  /**
   * Saves a snapshot atomically and durably, then deletes all but the newest `keep`.
   *
   * Rejects a snapshot older than the newest one on disk: that is a caller bug and would be
   * deleted at once. Concurrent saves run one at a time.
   */
  save(snap: SnapshotInput): Promise<SnapshotInfo> {
    const run = this.#saveChain.then(() => this.#save(snap));
    this.#saveChain = run.catch(() => {});
    return run;
  }

  async #save(snap: SnapshotInput): Promise<SnapshotInfo> {
    for (const [k, v] of [["index", snap.index], ["term", snap.term]] as const) {
      if (!Number.isSafeInteger(v) || v < 0) {
        throw new RangeError(`snapshot ${k} must be a non-negative integer, got ${v}`);
      }
    }
    if (snap.payload.length > SNAPSHOT_PAYLOAD_MAX_BYTES) {
      throw new RangeError(
        `snapshot payload is ${snap.payload.length} bytes, max ${SNAPSHOT_PAYLOAD_MAX_BYTES}`,
      );
    }
    const existing = await this.list();
    const newest = existing[0];
    if (
      newest &&
      (snap.index < newest.index || (snap.index === newest.index && snap.term < newest.term))
    ) {
      throw new RangeError(
        `snapshot at index ${snap.index} term ${snap.term} is older than the newest on disk ` +
          `(index ${newest.index} term ${newest.term})`,
      );
    }
    const bytes = encodeSnapshot(snap);
    const name = snapshotName(snap.index, snap.term);
    const final = _join(this.#dir, name);
    const tmp = final + _TMP_SUFFIX;
    await this.#fs.mkdir(this.#dir);
    await this.#removeIfPresent(tmp);
    try {
      const f = await this.#fs.open(tmp, "create_new");
      try {
        await writeAll(f, bytes);
        await f.sync();
      } finally {
        f.close();
      }
      await this.#fs.rename(tmp, final);
    } catch (e) {
      // Best effort: open() removes leftovers anyway, so a failure here changes nothing.
      await this.#removeIfPresent(tmp).catch(() => {});
      throw e;
    }
    await this.#fs.syncDir(this.#dir);
    this.#log.info("snapshot saved", { file: final, index: snap.index, term: snap.term });

    const all = await this.list();
    let pruned = 0;
    for (const old of all.slice(this.#keep)) {
      await this.#removeIfPresent(old.file);
      pruned++;
    }
    if (pruned > 0) await this.#fs.syncDir(this.#dir);
    return { index: snap.index, term: snap.term, file: final };
  }

  async #removeIfPresent(path: string): Promise<void> {
    try {
      await this.#fs.remove(path);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
}

function _join(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}
