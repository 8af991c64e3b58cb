/**
 * How skein runs itself again: the compiled executable as it is, or from source with
 * `deno run`, the given permissions and the V8 flags.
 * @module
 */
import { V8_FLAGS_ARG } from "./v8_flags.ts";

/** A way to start `skein`: the program and the arguments before skein's own. */
export interface SelfCommand {
  cmd: string;
  prefix: string[];
  fromSource: boolean;
}

/**
 * The command that runs this `skein` again; from source, `permissions` are the `deno run`
 * permission flags the child gets (a compiled binary has its own built in).
 */
export function selfCommand(permissions: readonly string[] = ["--allow-all"]): SelfCommand {
  const exe = Deno.execPath();
  const base = exe.split(/[\\/]/).pop() ?? "";
  if (base.startsWith("deno")) {
    return {
      cmd: exe,
      prefix: [
        "run",
        ...permissions,
        "--quiet",
        V8_FLAGS_ARG,
        new URL("./skein.ts", import.meta.url).pathname,
      ],
      fromSource: true,
    };
  }
  return { cmd: exe, prefix: [], fromSource: false };
}
