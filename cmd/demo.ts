/**
 * `skein demo`: a whole mesh on loopback.
 * @module
 */
import type { Logger } from "../common/log.ts";
import { type CommandIo, EXIT } from "./io.ts";

/** Options of {@linkcode runDemo}. */
export interface RunDemoOptions {
  dir?: string;
  io: CommandIo;
  log: Logger;
}

/** Runs the demo until Ctrl-C; returns the exit code. */
export function runDemo(opts: RunDemoOptions): Promise<number> {
  opts.io.stderr("skein demo: not available yet: the data plane is not wired\n");
  return Promise.resolve(EXIT.failure);
}
