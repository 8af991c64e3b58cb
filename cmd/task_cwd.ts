/**
 * `deno task skein …` runs in the checkout's root, not where the user typed it; `deno task`
 * says where that was in `INIT_CWD`. Relative paths (`--config ./proxy.yaml`) must mean what
 * they mean in the user's shell.
 * @module
 */

/** The directory to work in: INIT_CWD when a task runner moved us to the checkout root. */
export function taskCwd(env: Record<string, string | undefined>, cwd: string, root: string) {
  const init = env.INIT_CWD;
  if (!init || init === cwd) return null;
  return cwd.replace(/\/+$/, "") === root.replace(/\/+$/, "") ? init : null;
}

/** Changes to the user's directory when started by `deno task` from a source checkout. */
export function enterTaskCwd(): void {
  const root = new URL("..", import.meta.url);
  if (root.protocol !== "file:") return;
  const dir = taskCwd(Deno.env.toObject(), Deno.cwd(), root.pathname);
  if (dir === null) return;
  try {
    Deno.chdir(dir);
  } catch {
    // A directory removed since: the checkout root is still a working directory.
  }
}
