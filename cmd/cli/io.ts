/**
 * The process boundary handed to every command, so commands are testable without a subprocess.
 * @module
 */

/** Where a command writes and what environment it sees. */
export interface CommandIo {
  /** Writes text to standard output as is. */
  stdout(text: string): void;
  /** Writes text to standard error as is. */
  stderr(text: string): void;
  /** The environment. */
  env: Record<string, string>;
}

const _enc = new TextEncoder();

/** The real process's stdout, stderr and environment. */
export function processIo(): CommandIo {
  return {
    stdout: (t) => Deno.stdout.writeSync(_enc.encode(t)),
    stderr: (t) => Deno.stderr.writeSync(_enc.encode(t)),
    env: Deno.env.toObject(),
  };
}

/** Exit codes of the SPEC: 0 ok, 1 runtime failure, 2 bad usage or invalid configuration. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;
