/**
 * An exclusive claim on a control node's data directory. The WAL and the snapshot store assume
 * one owner: two processes on one directory append over each other's offsets, and the loser's
 * failure handling truncates records the other had already acknowledged.
 *
 * The claim is an exclusive `flock` on the directory's `LOCK` file, held through an open file
 * for as long as the node runs. The kernel drops it when the owner exits however it exits
 * (kill -9 included), so a dead owner never blocks a restart, and no pid is trusted: a zombie
 * or a reused pid cannot pass for a live owner. The pid written into the file only names the
 * owner in the refusal message.
 * @module
 */

/** Thrown when another live process (or this one) holds the directory. */
export class DataDirInUseError extends Error {}

/** A held claim; {@linkcode DataDirLock.release} gives it up. */
export class DataDirLock {
  readonly #file: Deno.FsFile;
  #released = false;

  private constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  /** Claims `dir`, or throws {@linkcode DataDirInUseError} when a live holder has it. */
  static async acquire(dir: string): Promise<DataDirLock> {
    const path = `${dir}/LOCK`;
    // Not truncated on open: the holder's pid stays readable for the refusal message.
    const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
    let locked = false;
    try {
      // flock locks belong to the open file, so a second open in this process is refused too.
      locked = await file.tryLock(true);
      if (!locked) {
        const owner = (await Deno.readTextFile(path).catch(() => "")).trim();
        throw new DataDirInUseError(
          `data_dir ${dir} is in use${/^\d+$/.test(owner) ? ` by process ${owner}` : ""} ` +
            `(${path} is locked); two nodes must never share a data directory`,
        );
      }
      await file.truncate(0);
      await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
      return new DataDirLock(file);
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /** Gives the claim up (closing the file drops the lock; the file stays for the next owner). */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    try {
      this.#file.close();
    } catch {
      // Closed already.
    }
  }
}
