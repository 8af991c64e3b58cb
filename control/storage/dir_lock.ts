/**
 * An exclusive claim on a control node's data directory. The WAL and the snapshot store assume
 * one owner: two processes on one directory append over each other's offsets, and the loser's
 * failure handling truncates records the other had already acknowledged.
 *
 * The claim is a `LOCK` file created exclusively with the owner's pid. A file left by a process
 * that is gone (a crash) is taken over; one whose process is alive refuses the start. (Deno's
 * `flock` has no try-lock, and a blocked one cannot be cancelled, so a pid file it is.)
 * @module
 */

/** The LOCK files this process holds. */
const _held = new Set<string>();

/** Thrown when another live process holds the directory. */
export class DataDirInUseError extends Error {}

/** A held claim; {@linkcode DataDirLock.release} gives it up. */
export class DataDirLock {
  readonly #path: string;
  #released = false;

  private constructor(path: string) {
    this.#path = path;
  }

  /** Claims `dir`, or throws {@linkcode DataDirInUseError} when a live process holds it. */
  static async acquire(dir: string): Promise<DataDirLock> {
    const path = `${dir}/LOCK`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const f = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
        try {
          await f.write(new TextEncoder().encode(`${Deno.pid}\n`));
          await f.sync();
        } finally {
          f.close();
        }
        _held.add(path);
        return new DataDirLock(path);
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      }
      const owner = Number((await Deno.readTextFile(path).catch(() => "")).trim());
      // Our own pid on a file this process does not hold: left by an earlier process that
      // had the same pid, so as stale as any other.
      if (Number.isInteger(owner) && owner > 0 && owner !== Deno.pid && await _alive(owner)) {
        throw new DataDirInUseError(
          `data_dir ${dir} is in use by process ${owner} (${path}); two nodes must never share ` +
            "a data directory (remove the file only if no node runs on it)",
        );
      }
      if (_held.has(path)) {
        throw new DataDirInUseError(`data_dir ${dir} is already open in this process`);
      }
      // Left by a process that is gone: take it over (once; a racing start may win instead).
      await Deno.remove(path).catch(() => {});
    }
    throw new DataDirInUseError(`data_dir ${dir}: another process claimed it at the same time`);
  }

  /** Gives the claim up (removes the file). */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    _held.delete(this.#path);
    try {
      Deno.removeSync(this.#path);
    } catch {
      // Gone already.
    }
  }
}

/** Whether process `pid` exists on this machine. */
async function _alive(pid: number): Promise<boolean> {
  try {
    await Deno.stat(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}
