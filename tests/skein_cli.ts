/**
 * Runs the real `skein` entry point as a subprocess, for end-to-end tests.
 * @module
 */
import { sharedSeed } from "./tls_fixture.ts";

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
  // `skein ctl` trusts the test CA seed by default, like an operator's SKEIN_CA_FILE.
  const caFile = (await sharedSeed()).certFile;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", SKEIN_ENTRY, ...args],
    env: { NO_COLOR: "1", SKEIN_CA_FILE: caFile, ...opts.env },
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

/**
 * Creates a join token for `service` (or, with `kind` "gateway", for the gateway of that name)
 * with `skein ctl tokens create`; throws with ctl's stderr.
 */
export async function createJoinToken(
  controlUrl: string,
  adminToken: string,
  service: string,
  ttl = "1h",
  kind: "service" | "gateway" = "service",
): Promise<string> {
  const r = await runSkein([
    "ctl",
    "tokens",
    "create",
    `--${kind}`,
    service,
    "--ttl",
    ttl,
    "--control",
    controlUrl,
    "-o",
    "json",
    "--token",
    adminToken,
    "--ca-file",
    (await sharedSeed()).certFile,
  ]);
  if (r.code !== 0) throw new Error(`skein ctl tokens create failed (exit ${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout).token as string;
}
