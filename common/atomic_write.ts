/**
 * Replacing a small file so that a crash or power cut leaves either the old content or the new
 * one, never a mix, and never a stray temporary file after a failure the process saw.
 *
 * The sequence is the usual one: a new temporary file beside the target (created exclusively,
 * so two writers never share it), its mode set exactly (creation modes are masked by the
 * umask), the bytes written and fsynced, a rename over the target, then an fsync of the
 * directory so the rename itself survives a power cut. Without that last step the file's new
 * name lives only in the page cache, and a power cut right after a certificate renewal or a
 * catalog save can bring back the previous file.
 * @module
 */

/** Options of {@linkcode writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** The file's mode, set exactly. @default 0o600 */
  mode?: number;
}

/** The directory part of `path` ("." for a bare name). */
export function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

/** Fsyncs a directory so renames and creations in it are durable; a no-op where refused. */
export async function syncDir(dir: string): Promise<void> {
  let d: Deno.FsFile;
  try {
    d = await Deno.open(dir, { read: true });
  } catch {
    // Some platforms cannot open a directory as a file; the rename is still atomic there.
    return;
  }
  try {
    await d.sync();
  } catch {
    // Some filesystems refuse fsync on a directory (EINVAL); nothing more can be done.
  } finally {
    d.close();
  }
}

/**
 * Replaces `path` with `data` atomically and durably (see the module doc). The directory must
 * exist. On any failure the temporary file is removed and the error is rethrown; the old
 * file, if any, is untouched.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  const mode = opts.mode ?? 0o600;
  const dir = dirOf(path);
  const name = path.slice(path.lastIndexOf("/") + 1);
  const rand = crypto.getRandomValues(new Uint32Array(1))[0]!.toString(16).padStart(8, "0");
  const tmp = `${dir}/.${name}.${rand}.tmp`;
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const f = await Deno.open(tmp, { write: true, createNew: true, mode });
  try {
    try {
      await Deno.chmod(tmp, mode);
      let off = 0;
      while (off < bytes.length) off += await f.write(bytes.subarray(off));
      await f.sync();
    } finally {
      f.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  await syncDir(dir);
}
