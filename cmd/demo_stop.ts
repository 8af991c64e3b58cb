/**
 * How `skein demo` judges the way each child ended when the demo stopped it: a child that exited
 * 0 stopped as asked; anything else is a real failure, named so the user knows which log to read.
 * @module
 */

/** How one child ended when the demo stopped it. */
export interface ChildStop {
  /** The child's name in the demo, e.g. `cp-1`. */
  name: string;
  /** Its exit code (128 + n when signal n ended it). */
  code: number;
  /** The signal that ended it, or null when it exited by itself. */
  signal: Deno.Signal | null;
  /** Whether the demo had to SIGKILL it because it did not stop in time. */
  killed: boolean;
}

/** Why a child's stop counts as a failure (one line), or null when it stopped cleanly. */
export function stopProblem(c: ChildStop, stopTimeoutMs: number): string | null {
  if (c.killed) {
    return `${c.name} did not stop within ${stopTimeoutMs / 1000} s of SIGTERM and was killed`;
  }
  if (c.code === 0) return null;
  if (c.signal !== null) return `${c.name} was ended by ${c.signal} (exit code ${c.code})`;
  return `${c.name} exited with code ${c.code}`;
}
