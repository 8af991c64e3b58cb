/**
 * One child process of `skein demo`: its output goes to a log file, the last lines stay in
 * memory so a failure can be explained at once, and start-up waits on a line it prints (the
 * address it bound to port 0) or on its exit, whichever comes first.
 * @module
 */

/** Lines of a child's output kept for an error message. */
export const DEMO_TAIL_LINES = 8;

/** A child that exited before the demo had what it waited for. */
export class ChildExitedError extends Error {
  /** Builds the message from the child's name, exit code and last log lines. */
  constructor(name: string, code: number, tail: string[], logFile: string) {
    super(
      `${name} exited with code ${code} during start-up; its last log lines (${logFile}):\n` +
        tail.map((l) => `  ${l}`).join("\n"),
    );
    this.name = "ChildExitedError";
  }
}

/** A running child of the demo. */
export class DemoChild {
  readonly name: string;
  readonly proc: Deno.ChildProcess;
  readonly logFile: string;
  /** Resolves when the output is fully written to the log file. */
  readonly logged: Promise<void>;
  /** Resolves with the exit code. */
  readonly exited: Promise<number>;
  #tail: string[] = [];
  #partial = "";
  #watchers = new Set<(line: string) => void>();
  #stdin: WritableStreamDefaultWriter<Uint8Array> | null;

  private constructor(name: string, proc: Deno.ChildProcess, logFile: string, file: Deno.FsFile) {
    this.name = name;
    this.proc = proc;
    this.logFile = logFile;
    this.#stdin = proc.stdin.getWriter();
    const w = file.writable.getWriter();
    const dec = new TextDecoder();
    const drain = async (s: ReadableStream<Uint8Array>) => {
      for await (const c of s) {
        await w.write(c);
        this.#onText(dec.decode(c, { stream: true }));
      }
    };
    this.logged = Promise.all([drain(proc.stdout), drain(proc.stderr)]).then(() => w.close())
      .catch(() => {});
    this.exited = proc.status.then((s) => s.code);
  }

  /** Spawns `cmd args` with its output in `logFile`. */
  static async spawn(name: string, cmd: string, args: string[], logFile: string) {
    const file = await Deno.open(logFile, { write: true, create: true, truncate: true });
    const proc = new Deno.Command(cmd, {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    return new DemoChild(name, proc, logFile, file);
  }

  /** The last lines the child printed. */
  tail(): string[] {
    return [...this.#tail];
  }

  /** Writes one line to the child's stdin. */
  async send(line: string): Promise<void> {
    await this.#stdin?.write(new TextEncoder().encode(line + "\n"));
  }

  /** Closes the child's stdin. */
  async closeStdin(): Promise<void> {
    const w = this.#stdin;
    this.#stdin = null;
    await w?.close().catch(() => {});
  }

  /**
   * Waits for a line matching `re`; rejects with {@linkcode ChildExitedError} if the child exits
   * first, or when `abort` resolves (with its value as the message).
   */
  waitLine(re: RegExp, abort: Promise<string>): Promise<RegExpMatchArray> {
    const found = this.#tail.map((l) => l.match(re)).find((m) => m !== null);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const watch = (line: string) => {
        const m = line.match(re);
        if (m) {
          this.#watchers.delete(watch);
          resolve(m);
        }
      };
      this.#watchers.add(watch);
      this.exited.then(async (code) => {
        await this.logged;
        if (!this.#watchers.delete(watch)) return;
        reject(new ChildExitedError(this.name, code, this.tail(), this.logFile));
      });
      abort.then((why) => {
        if (this.#watchers.delete(watch)) reject(new Error(why));
      });
    });
  }

  #onText(text: string): void {
    const parts = (this.#partial + text).split("\n");
    this.#partial = parts.pop() ?? "";
    // Without a newline a long line still has to be bounded.
    if (this.#partial.length > 4096) {
      parts.push(this.#partial);
      this.#partial = "";
    }
    for (const line of parts) {
      this.#tail.push(line);
      if (this.#tail.length > DEMO_TAIL_LINES) this.#tail.shift();
      for (const w of [...this.#watchers]) w(line);
    }
  }
}

/** The `key=value` fields of a logfmt line (quoted values unquoted). */
export function logfmtFields(line: string): Record<string, string> {
  return Object.fromEntries(
    [...line.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S*)/g)].map((x) => [
      x[1]!,
      x[2]!.startsWith('"') ? JSON.parse(x[2]!) as string : x[2]!,
    ]),
  );
}
