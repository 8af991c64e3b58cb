/**
 * A simulated disk for the control node: an in-memory {@linkcode StorageFs} that remembers what
 * was made durable and what was not. A crash keeps each file's fsynced bytes plus a random
 * prefix of the rest (a torn write), and keeps only the directory entries a `syncDir` made
 * durable. A fault plan asked before every write, fsync, rename, remove and truncate can crash
 * the process at exactly that operation (part of a write may land first) or fail it with EIO.
 * @module
 */
import {
  type FsOp,
  type OpenMode,
  type StorageFile,
  type StorageFs,
} from "../../control/storage/fs.ts";
import { FsFaultError } from "../../control/storage/fs.ts";

/** What the fault plan decides for one operation. */
export type FsFault = "ok" | "crash" | "eio";

/** Options of {@linkcode MemFs}. */
export interface MemFsOptions {
  /** Seeded random source for torn tails and short writes. */
  random: () => number;
  /** Asked before each mutating operation. @default always "ok" */
  plan?: (op: FsOp, path: string) => FsFault;
  /** Called once when the plan crashes the process (the disk is dead from then on). */
  onCrash?: () => void;
  /** Chance that a write is short (returns fewer bytes; the caller loops). @default 0 */
  shortWriteChance?: number;
  /**
   * Files whose path contains this answer fsync without making anything durable: a deliberate
   * bug (a write acknowledged before it is on disk), to prove the simulation's checker catches
   * lost acknowledged writes. @default none
   */
  ignoreSyncUnder?: string;
}

class _Inode {
  bytes = new Uint8Array(64);
  len = 0;
  /** Bytes that survive a crash. */
  synced = 0;

  append(data: Uint8Array): void {
    if (this.len + data.length > this.bytes.length) {
      const next = new Uint8Array(Math.max(this.bytes.length * 2, this.len + data.length));
      next.set(this.bytes.subarray(0, this.len));
      this.bytes = next;
    }
    this.bytes.set(data, this.len);
    this.len += data.length;
  }

  content(): Uint8Array {
    return this.bytes.slice(0, this.len);
  }
}

function _parent(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

/** Never settles: what an operation of a dead process looks like from inside it. */
function _never<T>(): Promise<T> {
  return new Promise<T>(() => {});
}

/** An in-memory disk with crash semantics. */
export class MemFs implements StorageFs {
  readonly #opts: MemFsOptions;
  readonly #dirs = new Set<string>(["/"]);
  /** The namespace as the running process sees it. */
  readonly #live = new Map<string, _Inode>();
  /** The namespace a crash leaves: entries as of each directory's last `syncDir`. */
  readonly #durable = new Map<string, _Inode>();
  #dead = false;
  /** Operations the plan crashed or failed, and snapshots written, for the run's statistics. */
  faults = { crashes: 0, eio: 0, tornBytes: 0, snapshots: 0 };

  /** Creates an empty disk. */
  constructor(opts: MemFsOptions) {
    this.#opts = opts;
  }

  /** Whether the process using this disk has died. */
  get dead(): boolean {
    return this.#dead;
  }

  /** Kills the disk's process from outside (a crash that did not happen at an operation). */
  kill(): void {
    this.#dead = true;
  }

  /**
   * The disk as the next life of the process finds it: durable directory entries only, each
   * file cut to its fsynced bytes plus a random prefix of the unsynced rest.
   */
  crashImage(opts: MemFsOptions): MemFs {
    this.#dead = true;
    const next = new MemFs(opts);
    for (const d of this.#dirs) next.#dirs.add(d);
    const copies = new Map<_Inode, _Inode>();
    for (const [path, ino] of this.#durable) {
      let c = copies.get(ino);
      if (!c) {
        c = new _Inode();
        const extra = Math.floor(this.#opts.random() * (ino.len - ino.synced + 1));
        this.faults.tornBytes += ino.len - ino.synced - extra;
        c.append(ino.bytes.subarray(0, ino.synced + extra));
        c.synced = c.len;
        copies.set(ino, c);
      }
      next.#live.set(path, c);
      next.#durable.set(path, c);
    }
    return next;
  }

  /** Asks the plan; true when the operation may go on. */
  #check(op: FsOp, path: string, beforeCrash?: () => void): boolean | "eio" {
    if (this.#dead) return false;
    const f = this.#opts.plan?.(op, path) ?? "ok";
    if (f === "eio") {
      this.faults.eio++;
      return "eio";
    }
    if (f === "crash") {
      beforeCrash?.();
      this.faults.crashes++;
      this.#dead = true;
      this.#opts.onCrash?.();
      return false;
    }
    return true;
  }

  async #mutate<T>(op: FsOp, path: string, f: () => T): Promise<T> {
    const ok = this.#check(op, path);
    if (ok === "eio") throw new FsFaultError("EIO", op, path);
    if (!ok) return _never();
    return await Promise.resolve(f());
  }

  /** Creates a directory (kept across crashes: the data directory exists before the node). */
  mkdir(path: string): Promise<void> {
    if (this.#dead) return _never();
    for (let p = path; p !== "/" && p !== ""; p = _parent(p)) this.#dirs.add(p);
    return Promise.resolve();
  }

  /** Lists the names in a directory. */
  readDir(path: string): Promise<string[]> {
    if (this.#dead) return _never();
    if (!this.#dirs.has(path)) return Promise.reject(new Deno.errors.NotFound(path));
    const names: string[] = [];
    for (const p of this.#live.keys()) {
      if (_parent(p) === path) names.push(p.slice(path.length + 1));
    }
    return Promise.resolve(names.sort());
  }

  /** Reads a whole file. */
  readFile(path: string): Promise<Uint8Array> {
    if (this.#dead) return _never();
    const ino = this.#live.get(path);
    return ino ? Promise.resolve(ino.content()) : Promise.reject(new Deno.errors.NotFound(path));
  }

  /** A file's size. */
  size(path: string): Promise<number> {
    if (this.#dead) return _never();
    const ino = this.#live.get(path);
    return ino ? Promise.resolve(ino.len) : Promise.reject(new Deno.errors.NotFound(path));
  }

  /** Opens a file for appending writes. */
  open(path: string, mode: OpenMode): Promise<StorageFile> {
    return this.#mutate("open", path, () => {
      if (!this.#dirs.has(_parent(path))) throw new Deno.errors.NotFound(_parent(path));
      let ino = this.#live.get(path);
      if (ino && mode === "create_new") throw new Deno.errors.AlreadyExists(path);
      if (!ino) {
        ino = new _Inode();
        this.#live.set(path, ino);
      }
      return this.#file(ino, path);
    });
  }

  #file(ino: _Inode, path: string): StorageFile {
    return {
      write: (data: Uint8Array): Promise<number> => {
        const ok = this.#check("write", path, () => {
          // The process died mid-write: some prefix of the buffer may have reached the file.
          const n = Math.floor(this.#opts.random() * (data.length + 1));
          ino.append(data.subarray(0, n));
        });
        if (ok === "eio") return Promise.reject(new FsFaultError("EIO", "write", path));
        if (!ok) return _never();
        let n = data.length;
        const short = this.#opts.shortWriteChance ?? 0;
        if (n > 1 && short > 0 && this.#opts.random() < short) {
          n = 1 + Math.floor(this.#opts.random() * (n - 1));
        }
        ino.append(data.subarray(0, n));
        return Promise.resolve(n);
      },
      sync: (): Promise<void> => {
        const ok = this.#check("sync", path);
        if (ok === "eio") return Promise.reject(new FsFaultError("EIO", "sync", path));
        if (!ok) return _never();
        const lying = this.#opts.ignoreSyncUnder;
        if (lying === undefined || !path.includes(lying)) ino.synced = ino.len;
        return Promise.resolve();
      },
      close: () => {},
    };
  }

  /** Renames atomically in the live namespace; durable after the directory's sync. */
  rename(from: string, to: string): Promise<void> {
    return this.#mutate("rename", from, () => {
      const ino = this.#live.get(from);
      if (!ino) throw new Deno.errors.NotFound(from);
      this.#live.delete(from);
      this.#live.set(to, ino);
      if (to.includes("/snap/")) this.faults.snapshots++;
    });
  }

  /** Removes a file from the live namespace; durable after the directory's sync. */
  remove(path: string): Promise<void> {
    return this.#mutate("remove", path, () => {
      if (!this.#live.delete(path)) throw new Deno.errors.NotFound(path);
    });
  }

  /** Cuts a file (and what of it survives a crash). */
  truncate(path: string, length: number): Promise<void> {
    return this.#mutate("truncate", path, () => {
      const ino = this.#live.get(path);
      if (!ino) throw new Deno.errors.NotFound(path);
      ino.len = Math.min(ino.len, length);
      ino.synced = Math.min(ino.synced, ino.len);
    });
  }

  /** Makes a directory's entries durable. */
  syncDir(path: string): Promise<void> {
    return this.#mutate("syncDir", path, () => {
      for (const p of [...this.#durable.keys()]) if (_parent(p) === path) this.#durable.delete(p);
      for (const [p, ino] of this.#live) if (_parent(p) === path) this.#durable.set(p, ino);
    });
  }
}
