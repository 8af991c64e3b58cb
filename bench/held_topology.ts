/**
 * A held benchmark topology (`bench/mesh_bench.ts --mtls --hold`) for tools that measure it from
 * outside: `bench/ab_pair.ts` and `bench/machine_share.ts`.
 * @module
 */

/** CPU time (user + system) a process has used so far, ms. */
export async function cpuMs(pid: number): Promise<number> {
  const s = await Deno.readTextFile(`/proc/${pid}/stat`);
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** One target of the topology: where wrk sends calls and the proxies (inbound, outbound). */
export interface HeldTarget {
  port: number;
  pids: number[];
}

/**
 * A running topology: its process (SIGINT ends it), the app's and the control node's pids and
 * the targets by name.
 */
export interface HeldTopology {
  child: Deno.ChildProcess;
  app: number | null;
  control: number | null;
  targets: Map<string, HeldTarget>;
}

/** Which benchmark to hold and the target it prints last, once everything is up. */
export interface HoldScript {
  /** Arguments after `deno run -A`, without `--hold`. */
  args: string[];
  /** The target name whose `hold:` line ends the setup. */
  last: string;
}

/** The mTLS mesh pair of `bench/mesh_bench.ts`. */
export const MESH_MTLS_HOLD: HoldScript = {
  args: ["bench/mesh_bench.ts", "--mtls"],
  last: "skein-mtls",
};

/**
 * Starts `script` (by default `bench/mesh_bench.ts --mtls`) with `--hold` in the checkout in
 * `dir` (with `env` added and `extraArgs` passed on) and resolves once its last target is up.
 */
export async function holdTopology(
  dir: string,
  env: Record<string, string> = {},
  extraArgs: string[] = [],
  script: HoldScript = MESH_MTLS_HOLD,
): Promise<HeldTopology> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...script.args, "--hold", ...extraArgs],
    cwd: dir,
    env,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const ready = new RegExp(`hold: ${script.last} port=\\d+ pids=[\\d,]+\\n`);
  while (!ready.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the topology in ${dir} exited before holding:\n${text}`);
    text += value;
  }
  // Keep draining, so the child never blocks on a full pipe.
  void (async () => {
    while (!(await reader.read()).done) { /* discard */ }
  })();
  const targets = new Map<string, HeldTarget>();
  for (const m of text.matchAll(/hold: (\S+) port=(\d+) pids=([\d,]*)/g)) {
    targets.set(m[1]!, { port: Number(m[2]), pids: m[3] ? m[3].split(",").map(Number) : [] });
  }
  // Checkouts from before the app's pid was printed hold without it.
  const app = /hold: app pid=(\d+)/.exec(text)?.[1];
  const control = /hold: control pid=(\d+)/.exec(text)?.[1];
  return {
    child,
    app: app === undefined ? null : Number(app),
    control: control === undefined ? null : Number(control),
    targets,
  };
}
