/**
 * `skein version`: the version, the Deno runtime and the git commit when known.
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };
import { BUILD_COMMIT } from "./build_info.ts";
import type { CommandIo } from "./cli/io.ts";

/** The skein version from deno.json. */
export const VERSION: string = denoJson.version;

/** Finds the commit: baked in at build time, else asked of git beside the source tree. */
export async function gitCommit(): Promise<string | null> {
  if (BUILD_COMMIT) return BUILD_COMMIT;
  const dir = new URL("..", import.meta.url);
  if (dir.protocol !== "file:") return null;
  return await gitCommitIn(decodeURIComponent(dir.pathname).replace(/\/$/, ""));
}

/**
 * The commit checked out in `dir`. A source install is owned by root and run as the `skein`
 * user, which git refuses as "dubious ownership"; naming the tree as safe for this one
 * read-only query keeps `skein version` from saying "unknown".
 */
export async function gitCommitIn(dir: string): Promise<string | null> {
  try {
    const out = await new Deno.Command("git", {
      args: ["-c", `safe.directory=${dir}`, "rev-parse", "--short=12", "HEAD"],
      cwd: dir,
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() || null : null;
  } catch {
    return null;
  }
}

/** Prints version information. */
export async function runVersion(io: CommandIo, json: boolean): Promise<number> {
  const info = {
    skein: VERSION,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    commit: await gitCommit(),
  };
  if (json) io.stdout(JSON.stringify(info) + "\n");
  else {
    io.stdout(
      `skein ${info.skein}\ndeno ${info.deno} (v8 ${info.v8}, typescript ${info.typescript})\ncommit ${
        info.commit ?? "unknown"
      }\n`,
    );
  }
  return 0;
}
