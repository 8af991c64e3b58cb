/**
 * Runs the real `skein` entry point as a subprocess, for end-to-end tests.
 * @module
 */

/** What a finished `skein` run printed and returned. */
export interface SkeinRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The entry point, resolved from this file so tests work from any cwd. */
export const SKEIN_ENTRY = new URL("../cmd/skein.ts", import.meta.url).pathname;

/** Runs `skein args…` to completion. */
export async function runSkein(
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string } = {},
): Promise<SkeinRun> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", SKEIN_ENTRY, ...args],
    env: { NO_COLOR: "1", ...opts.env },
    cwd: opts.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Starts `skein args…` in the background with piped output. */
export function spawnSkein(
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string } = {},
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", SKEIN_ENTRY, ...args],
    env: { NO_COLOR: "1", ...opts.env },
    cwd: opts.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}
