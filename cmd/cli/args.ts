/**
 * A small, strict command-line flag parser: unknown flags are errors with a suggestion.
 * @module
 */
import { flagRow, wrapText } from "./help_text.ts";
import { didYouMean } from "../../config/suggest.ts";

/** Declares one flag a command accepts. */
export interface FlagSpec {
  /** Long name without dashes, e.g. "config". */
  name: string;
  /** One-letter alias without dash, e.g. "o". */
  short?: string;
  /** Whether the flag takes a value (`--config FILE`) or is a switch (`--help`). */
  value: boolean;
  /** Help text. */
  help: string;
  /** Allowed values, checked at parse time. */
  choices?: readonly string[];
}

/** Parsed flags and positional arguments. */
export interface ParsedArgs {
  flags: Map<string, string>;
  positional: string[];
}

/** Thrown for bad usage; the CLI prints it and exits 2. */
export class UsageError extends Error {
  /** Creates a usage error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Flags every command accepts. */
export const GLOBAL_FLAGS: FlagSpec[] = [
  { name: "help", short: "h", value: false, help: "show help for the command" },
  {
    name: "log-level",
    value: true,
    help: "debug | info | warn | error",
    choices: ["debug", "info", "warn", "error"],
  },
  { name: "log-format", value: true, help: "logfmt | json", choices: ["logfmt", "json"] },
];

/** Parses argv against the given flag specs (plus the global ones). */
export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[]): ParsedArgs {
  const all = [...specs, ...GLOBAL_FLAGS];
  const byName = new Map(all.map((s) => [s.name, s]));
  const byShort = new Map(all.filter((s) => s.short).map((s) => [s.short!, s]));
  const flags = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith("-") || a === "-") {
      positional.push(a);
      continue;
    }
    const long = a.startsWith("--");
    const body = long ? a.slice(2) : a.slice(1);
    const eq = body.indexOf("=");
    const key = eq >= 0 ? body.slice(0, eq) : body;
    const spec = long ? byName.get(key) : byShort.get(key);
    if (!spec) {
      const hint = didYouMean(key, long ? byName.keys() : byShort.keys());
      throw new UsageError(
        `unknown flag ${a}${hint ? `; did you mean ${long ? "--" : "-"}${hint}?` : ""}`,
      );
    }
    let value = "true";
    if (spec.value) {
      if (eq >= 0) value = body.slice(eq + 1);
      else {
        const next = argv[i + 1];
        if (next === undefined) throw new UsageError(`flag --${spec.name} needs a value`);
        value = next;
        i++;
      }
      if (spec.choices && !spec.choices.includes(value)) {
        throw new UsageError(
          `flag --${spec.name} expects one of ${spec.choices.join(", ")}, got ${
            JSON.stringify(value)
          }`,
        );
      }
    } else if (eq >= 0) {
      throw new UsageError(`flag --${spec.name} takes no value`);
    }
    flags.set(spec.name, value);
  }
  return { flags, positional };
}

/** The EXIT STATUS section every help page ends with (SPEC section 1). */
export const EXIT_STATUS_HELP =
  "0 ok; 1 runtime failure (a control node unreachable, a request refused, a check that found " +
  "problems); 2 bad usage or invalid configuration.";

/**
 * Renders a command's help page, man-page style: the usage line, DESCRIPTION, OPTIONS,
 * EXAMPLES (when given) and EXIT STATUS, wrapped to 100 columns.
 */
export function formatHelp(
  usage: string,
  summary: string,
  specs: readonly FlagSpec[],
  examples: readonly string[] = [],
): string {
  const rows = [...specs, ...GLOBAL_FLAGS].map((s) =>
    flagRow(`${s.short ? `-${s.short}, ` : "    "}--${s.name}${s.value ? " VALUE" : ""}`, s.help)
  );
  const head = wrapText(usage, "       ").join("\n").replace(/^ {7}/, "usage: ");
  const sections = [
    head,
    `DESCRIPTION\n${wrapText(summary, "    ").join("\n")}`,
    `OPTIONS\n${rows.join("\n")}`,
    ...(examples.length > 0
      ? [`EXAMPLES\n${examples.flatMap((e) => wrapText(e, "    ", 100, "        ")).join("\n")}`]
      : []),
    `EXIT STATUS\n${wrapText(EXIT_STATUS_HELP, "    ").join("\n")}`,
  ];
  return sections.join("\n\n") + "\n";
}
