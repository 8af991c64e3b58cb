/**
 * The `skein` command line a user can paste where they stand: the executable's path when
 * compiled, `deno task skein` from a source checkout (with `--config` outside the checkout).
 * @module
 */

/** How `skein` runs: from source through `deno run`, or as a compiled executable. */
export interface SkeinInvocation {
  cmd: string;
  fromSource: boolean;
}

/** The command prefix to print for running `skein` from `cwd` (repoRoot: the source checkout). */
export function runnableSkein(how: SkeinInvocation, cwd: string, repoRoot: string): string {
  if (!how.fromSource) return _quote(how.cmd);
  const root = repoRoot.replace(/\/+$/, "");
  const inside = cwd === root || cwd.startsWith(`${root}/`);
  return inside ? "deno task skein" : `deno task --config ${_quote(`${root}/deno.json`)} skein`;
}

function _quote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`;
}
