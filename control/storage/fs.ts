/**
 * The thin file-system interface the WAL and snapshot store use, a real Deno
 * implementation, and a fault-injecting wrapper for tests.
 *
 * Only the operations the storage layer needs are here, so a fault can be injected at
 * every point where real disks fail: a write that stops part way (ENOSPC), a short write,
 * an fsync that reports EIO, a rename that never happens because the process died.
 * @module
 */

/** An open file, positioned for sequential writes. */
export interface StorageFile {
  /** Writes some prefix of `data` and returns how many bytes were written (may be short). */
  write(data: Uint8Array): Promise<number>;
  /** Makes written data durable (fdatasync: data and the metadata needed to read it back). */
  sync(): Promise<void>;
  /** Closes the handle; safe to call more than once. */
  close(): void;
}

/** How {@linkcode StorageFs.open} opens a file; every mode opens for writing. */
export type OpenMode =
  /** Append to the file, creating it when absent. */
  | "append"
  /** Create a new file, failing with AlreadyExists when it exists. */
  | "create_new";

/** The file-system operations storage needs; paths are plain strings. */
export interface StorageFs {
  /** Creates a directory and its parents; succeeds when it already exists. */
  mkdir(path: string): Promise<void>;
  /** Lists the names (not paths) of the entries of a directory; NotFound when absent. */
  readDir(path: string): Promise<string[]>;
  /** Reads a whole file. */
  readFile(path: string): Promise<Uint8Array>;
  /** Returns the size of a file in bytes. */
  size(path: string): Promise<number>;
  /** Opens a file for writing. */
  open(path: string, mode: OpenMode): Promise<StorageFile>;
  /** Atomically renames `from` to `to`, replacing `to`. */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file. */
  remove(path: string): Promise<void>;
  /** Cuts a file to `length` bytes. */
  truncate(path: string, length: number): Promise<void>;
  /** Makes the directory's entries (creates, renames, removals) durable. */
  syncDir(path: string): Promise<void>;
}

/** Returns whether an error means "no such file or directory". */
export function isNotFound(e: unknown): boolean {
  return e instanceof Deno.errors.NotFound;
}

/** Writes all of `data`, looping over short writes. */
export async function writeAll(file: StorageFile, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const n = await file.write(data.subarray(off));
    // A zero-byte write that does not throw would loop forever; real kernels report an
    // error instead, so treat it as one.
    if (n <= 0) throw new Error(`write made no progress at byte ${off} of ${data.length}`);
    off += n;
  }
}

class _DenoFile implements StorageFile {
  #file: Deno.FsFile;
  #closed = false;
  constructor(file: Deno.FsFile) {
    this.#file = file;
  }
  write(data: Uint8Array): Promise<number> {
    return this.#file.write(data);
  }
  sync(): Promise<void> {
    return this.#file.syncData();
  }
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close();
  }
}

/** The real file system through `Deno.*`. */
export class DenoFs implements StorageFs {
  /** Creates a directory and its parents. */
  async mkdir(path: string): Promise<void> {
    // The log and snapshots hold the CA's private keys: owner only.
    await Deno.mkdir(path, { recursive: true, mode: 0o700 });
  }
  /** Lists the entry names of a directory. */
  async readDir(path: string): Promise<string[]> {
    const names: string[] = [];
    for await (const e of Deno.readDir(path)) names.push(e.name);
    return names;
  }
  /** Reads a whole file. */
  readFile(path: string): Promise<Uint8Array> {
    return Deno.readFile(path);
  }
  /** Returns a file's size. */
  async size(path: string): Promise<number> {
    return (await Deno.stat(path)).size;
  }
  /** Opens a file for writing. */
  async open(path: string, mode: OpenMode): Promise<StorageFile> {
    const f = mode === "append"
      ? await Deno.open(path, { write: true, append: true, create: true, mode: 0o600 })
      : await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
    return new _DenoFile(f);
  }
  /** Renames a file atomically. */
  rename(from: string, to: string): Promise<void> {
    return Deno.rename(from, to);
  }
  /** Removes a file. */
  remove(path: string): Promise<void> {
    return Deno.remove(path);
  }
  /** Cuts a file to `length` bytes. */
  truncate(path: string, length: number): Promise<void> {
    return Deno.truncate(path, length);
  }
  /** Fsyncs a directory (Linux and macOS allow opening a directory read-only for this). */
  async syncDir(path: string): Promise<void> {
    const d = await Deno.open(path, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  }
}

/** The operations {@linkcode FaultyFs} counts and can fail. */
export type FsOp = "write" | "sync" | "syncDir" | "rename" | "remove" | "truncate" | "open";

/** An error injected by {@linkcode FaultyFs}, carrying an errno-style code. */
export class FsFaultError extends Error {
  /** The errno name the fault imitates, e.g. `ENOSPC`. */
  readonly code: string;
  /** The operation that failed. */
  readonly op: FsOp;
  /** Creates the error. */
  constructor(code: string, op: FsOp, detail: string) {
    super(`injected ${code} on ${op}: ${detail}`);
    this.name = "FsFaultError";
    this.code = code;
    this.op = op;
  }
}

/** One planned fault of {@linkcode FaultyFs}. */
export interface FaultRule {
  /** The operation to fail. */
  op: FsOp;
  /** Fails on this matching call, 1-based, counted from when the rule was added. */
  at: number;
  /**
   * Keep failing every later call of the same operation too (a full disk stays full).
   * @default false
   */
  sticky?: boolean;
  /** errno name to report. @default "ENOSPC" for writes, "EIO" otherwise */
  code?: string;
  /** For writes: bytes that reach the file before the error, as a real partial write. @default 0 */
  partialBytes?: number;
  /** Only paths containing this substring trigger (and count toward `at`). @default every path */
  pathIncludes?: string;
}

/** Options for {@linkcode FaultyFs}. */
export interface FaultyFsOptions {
  /** Caps every write at this many bytes, to exercise short-write handling. @default no cap */
  maxWriteBytes?: number;
}

/**
 * Wraps a {@linkcode StorageFs}, counting operations and failing the ones a plan names.
 *
 * Counters are public so tests can assert on behaviour (e.g. fsyncs per append) rather than
 * on time.
 */
export class FaultyFs implements StorageFs {
  /** How many times each operation was called (failed calls included). */
  readonly counts: Record<FsOp, number> = {
    write: 0,
    sync: 0,
    syncDir: 0,
    rename: 0,
    remove: 0,
    truncate: 0,
    open: 0,
  };
  /** Faults that have fired, oldest first. */
  readonly fired: FsFaultError[] = [];
  #inner: StorageFs;
  #rules: FaultRule[] = [];
  #maxWriteBytes: number | undefined;
  #perRuleCounts = new Map<FaultRule, number>();

  /** Wraps `inner` (the real file system by default). */
  constructor(inner: StorageFs = new DenoFs(), opts: FaultyFsOptions = {}) {
    this.#inner = inner;
    this.#maxWriteBytes = opts.maxWriteBytes;
  }

  /** Adds a planned fault. */
  addFault(rule: FaultRule): void {
    this.#rules.push(rule);
    this.#perRuleCounts.set(rule, 0);
  }

  /** Plans a fault on the next call of `op` (optionally only for matching paths). */
  failNext(op: FsOp, rule: Omit<FaultRule, "op" | "at"> = {}): void {
    this.addFault({ ...rule, op, at: 1 });
  }

  /** Removes every planned fault (counters stay). */
  clearFaults(): void {
    this.#rules = [];
    this.#perRuleCounts.clear();
  }

  /** Sets or clears the per-write byte cap. */
  setMaxWriteBytes(n: number | undefined): void {
    this.#maxWriteBytes = n;
  }

  /** Returns the rule that fires for this call, counting the call against every matching rule. */
  _check(op: FsOp, path: string): FaultRule | undefined {
    this.counts[op]++;
    let hit: FaultRule | undefined;
    for (const r of this.#rules) {
      if (r.op !== op) continue;
      if (r.pathIncludes !== undefined && !path.includes(r.pathIncludes)) continue;
      const n = (this.#perRuleCounts.get(r) ?? 0) + 1;
      this.#perRuleCounts.set(r, n);
      if (n === r.at || (r.sticky === true && n > r.at)) hit ??= r;
    }
    return hit;
  }

  _fault(rule: FaultRule, op: FsOp, path: string): FsFaultError {
    const code = rule.code ?? (op === "write" ? "ENOSPC" : "EIO");
    const err = new FsFaultError(code, op, path);
    this.fired.push(err);
    return err;
  }

  async #simple<T>(op: FsOp, path: string, f: () => Promise<T>): Promise<T> {
    const rule = this._check(op, path);
    if (rule) throw this._fault(rule, op, path);
    return await f();
  }

  /** Creates a directory (not fault-injected: failures here are not interesting). */
  mkdir(path: string): Promise<void> {
    return this.#inner.mkdir(path);
  }
  /** Lists a directory. */
  readDir(path: string): Promise<string[]> {
    return this.#inner.readDir(path);
  }
  /** Reads a file. */
  readFile(path: string): Promise<Uint8Array> {
    return this.#inner.readFile(path);
  }
  /** Returns a file's size. */
  size(path: string): Promise<number> {
    return this.#inner.size(path);
  }
  /** Opens a file whose writes and syncs go through the fault plan. */
  async open(path: string, mode: OpenMode): Promise<StorageFile> {
    const inner = await this.#simple("open", path, () => this.#inner.open(path, mode));
    return new _FaultyFile(this, inner, path);
  }
  /** Renames, unless a fault is planned. */
  rename(from: string, to: string): Promise<void> {
    return this.#simple("rename", from, () => this.#inner.rename(from, to));
  }
  /** Removes, unless a fault is planned. */
  remove(path: string): Promise<void> {
    return this.#simple("remove", path, () => this.#inner.remove(path));
  }
  /** Truncates, unless a fault is planned. */
  truncate(path: string, length: number): Promise<void> {
    return this.#simple("truncate", path, () => this.#inner.truncate(path, length));
  }
  /** Syncs a directory, unless a fault is planned. */
  syncDir(path: string): Promise<void> {
    return this.#simple("syncDir", path, () => this.#inner.syncDir(path));
  }

  /** @internal */
  get _maxWriteBytes(): number | undefined {
    return this.#maxWriteBytes;
  }
}

class _FaultyFile implements StorageFile {
  #fs: FaultyFs;
  #inner: StorageFile;
  #path: string;
  constructor(fs: FaultyFs, inner: StorageFile, path: string) {
    this.#fs = fs;
    this.#inner = inner;
    this.#path = path;
  }
  async write(data: Uint8Array): Promise<number> {
    const rule = this.#fs._check("write", this.#path);
    if (rule) {
      // A real ENOSPC can land part of the buffer before failing; reproduce that so the
      // WAL has to cope with a half-written record on disk.
      const partial = Math.min(rule.partialBytes ?? 0, data.length);
      if (partial > 0) await writeAll(this.#inner, data.subarray(0, partial));
      throw this.#fs._fault(rule, "write", this.#path);
    }
    const cap = this.#fs._maxWriteBytes;
    return await this.#inner.write(cap !== undefined ? data.subarray(0, cap) : data);
  }
  async sync(): Promise<void> {
    const rule = this.#fs._check("sync", this.#path);
    if (rule) throw this.#fs._fault(rule, "sync", this.#path);
    await this.#inner.sync();
  }
  close(): void {
    this.#inner.close();
  }
}
