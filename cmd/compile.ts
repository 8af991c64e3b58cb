/**
 * `deno task compile`: builds single `skein` executables for the release targets into dist/.
 * Needs internet access (deno compile downloads a runtime per target).
 * @module
 */
import { V8_FLAGS_ARG } from "./v8_flags.ts";
import { isRuntimeDownloadFailure, runtimeDownloadHint } from "./compile_errors.ts";

/** The release targets of SPEC section 1. */
export const TARGETS = [
  ["x86_64-unknown-linux-gnu", "skein-linux-x64"],
  ["aarch64-unknown-linux-gnu", "skein-linux-arm64"],
  ["aarch64-apple-darwin", "skein-darwin-arm64"],
] as const;

/** The permissions a release binary runs with (the same as `deno task skein`). */
export const PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-sys",
  "--unstable-net",
];

/**
 * Modules the binary loads that `deno compile` cannot find by itself: the entry module of every
 * `new Worker(...)`. Literal `import("...")`s it follows on its own. A test
 * (tests/compile_includes_test.ts) holds this list to the workers the program starts.
 */
export const INCLUDES: readonly string[] = ["mesh/proxy/worker.ts"];

/** Files read at run time rather than imported: the dashboard's page and scripts. */
export const ASSET_DIRS: readonly string[] = ["control/dashboard/static"];

/** The `deno` arguments that build the binary `dist/<name>` for `target`. */
export function compileArgs(target: string, name: string): string[] {
  return [
    "compile",
    ...PERMISSIONS,
    ...[...INCLUDES, ...ASSET_DIRS].flatMap((m) => ["--include", m]),
    V8_FLAGS_ARG,
    "--target",
    target,
    "--output",
    `dist/${name}`,
    "cmd/skein.ts",
  ];
}

async function _commit(): Promise<string | null> {
  try {
    const out = await new Deno.Command("git", { args: ["rev-parse", "--short=12", "HEAD"] })
      .output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null;
  }
}

if (import.meta.main) {
  const only = Deno.args[0];
  const infoPath = new URL("./build_info.ts", import.meta.url);
  const original = await Deno.readTextFile(infoPath);
  const commit = await _commit();
  let failed = false;
  try {
    // Bake the commit in so `skein version` can report it without git.
    await Deno.writeTextFile(
      infoPath,
      original.replace(/= null;/, `= ${JSON.stringify(commit)};`),
    );
    await Deno.mkdir("dist", { recursive: true });
    for (const [target, name] of TARGETS) {
      if (only && only !== target && only !== name) continue;
      const out = await new Deno.Command(Deno.execPath(), {
        args: compileArgs(target, name),
        stdout: "inherit",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      if (!out.success && isRuntimeDownloadFailure(stderr)) {
        // Every other target would fail the same way: one line, then stop.
        console.error(runtimeDownloadHint(target));
        failed = true;
        break;
      }
      if (stderr) Deno.stderr.writeSync(out.stderr);
      if (!out.success) {
        failed = true;
        console.error(`compile: ${target} failed (exit ${out.code})`);
      }
    }
  } finally {
    await Deno.writeTextFile(infoPath, original);
  }
  Deno.exit(failed ? 1 : 0);
}
