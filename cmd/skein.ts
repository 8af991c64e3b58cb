/**
 * The `skein` executable: dispatches to control, proxy, ctl, ca, demo, version and check-config.
 * This file only wires; each command lives in its own module, loaded when used.
 * @module
 */
import { type FlagSpec, formatHelp, parseArgs, UsageError } from "./cli/args.ts";
import { wrapText } from "./cli/help_text.ts";
import type { LogControl } from "./log_control.ts";
import { type CommandIo, EXIT, processIo } from "./cli/io.ts";
import { didYouMean } from "../config/suggest.ts";
import { createLogger, type LogFormat, type Logger, type LogLevel } from "../common/log.ts";

interface Command {
  usage: string;
  summary: string;
  flags: FlagSpec[];
  /** Runs with parsed args; returns the exit code. */
  run(
    args: ReturnType<typeof parseArgs>,
    io: CommandIo,
    log: Logger,
    logControl?: LogControl,
  ): Promise<number>;
  /** ctl parses its own verbs and flags. */
  passThrough?: boolean;
}

const CONFIG_FLAGS: FlagSpec[] = [
  { name: "config", short: "c", value: true, help: "configuration file" },
  { name: "data-dir", value: true, help: "data directory (overrides data_dir)" },
  {
    name: "check",
    value: false,
    help: "check the configuration, files, permissions, ports and reachability, then exit " +
      "(0 fine, 1 problems, 2 invalid configuration)",
  },
];

const COMMANDS: Record<string, Command> = {
  control: {
    usage: "skein control [--config FILE] [--data-dir DIR] [--check]",
    summary:
      "Run a control node: Raft-replicated registry, certificate authority and operator API.\nDefault config: /etc/skein/control.yaml.",
    flags: CONFIG_FLAGS,
    async run(args, io, log, logControl) {
      if (args.flags.has("check")) {
        const { checkControlLocally } = await import("./local_check.ts");
        const path = args.flags.get("config") ?? "/etc/skein/control.yaml";
        return await checkControlLocally(path, args.flags.get("data-dir"), io);
      }
      const { runControl } = await import("./control.ts");
      return await runControl({
        configPath: args.flags.get("config") ?? "/etc/skein/control.yaml",
        dataDir: args.flags.get("data-dir"),
        io,
        log,
        logControl,
      });
    },
  },
  proxy: {
    usage: "skein proxy [--config FILE] [--data-dir DIR] [--check]",
    summary:
      "Run a proxy beside local service instances: discovery, balancing, mTLS, resilience.\nDefault config: /etc/skein/proxy.yaml.",
    flags: CONFIG_FLAGS,
    async run(args, io, log, logControl) {
      if (args.flags.has("check")) {
        const { checkProxyLocally } = await import("./local_check.ts");
        const path = args.flags.get("config") ?? "/etc/skein/proxy.yaml";
        return await checkProxyLocally(path, args.flags.get("data-dir"), io);
      }
      const { runProxy } = await import("./proxy.ts");
      return await runProxy({
        configPath: args.flags.get("config") ?? "/etc/skein/proxy.yaml",
        dataDir: args.flags.get("data-dir"),
        io,
        log,
        logControl,
      });
    },
  },
  ctl: {
    usage: "skein ctl <verb> [--control URL] [--token-file FILE] [--ca-file FILE] [-o FORMAT]",
    summary: "Operator CLI against the control API. `skein ctl --help` lists the verbs.",
    flags: [],
    passThrough: true,
    async run(args, io) {
      const { runCtl } = await import("./ctl.ts");
      return await runCtl(args.positional, io);
    },
  },
  ca: {
    usage:
      "skein ca create --out DIR [--offline-root ROOT_DIR] [--trust-domain NAME] | skein ca intermediate --root-cert F --root-key F --out DIR",
    summary:
      "Create the CA seed every control node of a new cluster is given (ca.pem, ca.key; with --offline-root the root's key goes to ROOT_DIR and DIR gets ca.pem plus an intermediate), or sign a new intermediate with an offline root.",
    flags: [
      { name: "out", value: true, help: "directory for the seed files (default: /etc/skein)" },
      { name: "trust-domain", value: true, help: "trust domain (default: skein.local)" },
      {
        name: "offline-root",
        value: true,
        help: "create: write the root and its key here (keep it off the servers)",
      },
      { name: "root-cert", value: true, help: "intermediate: the offline root certificate" },
      { name: "root-key", value: true, help: "intermediate: the offline root key" },
    ],
    async run(args, io) {
      const sub = args.positional[0];
      if ((sub !== "create" && sub !== "intermediate") || args.positional.length > 1) {
        throw new UsageError("expected `skein ca create` or `skein ca intermediate`");
      }
      const { runCaCreate, runCaIntermediate } = await import("./ca.ts");
      if (sub === "intermediate") {
        const rootCert = args.flags.get("root-cert");
        const rootKey = args.flags.get("root-key");
        const out = args.flags.get("out");
        if (rootCert === undefined || rootKey === undefined || out === undefined) {
          throw new UsageError("skein ca intermediate needs --root-cert F --root-key F --out DIR");
        }
        return await runCaIntermediate({
          rootCertFile: rootCert,
          rootKeyFile: rootKey,
          outDir: out,
          io,
        });
      }
      return await runCaCreate({
        outDir: args.flags.get("out") ?? "/etc/skein",
        trustDomain: args.flags.get("trust-domain") ?? "skein.local",
        offlineRootDir: args.flags.get("offline-root"),
        io,
      });
    },
  },
  demo: {
    usage: "skein demo",
    summary:
      "Run a complete local mesh on loopback: 3 control nodes, demo services with proxies and some traffic.",
    flags: [{ name: "dir", value: true, help: "working directory (default: a new temp dir)" }],
    async run(args, io, log) {
      const { runDemo } = await import("./demo.ts");
      return await runDemo({ dir: args.flags.get("dir"), io, log });
    },
  },
  completion: {
    usage: "skein completion bash|zsh",
    summary:
      'Print a shell completion script: eval "$(skein completion bash)" in ~/.bashrc (zsh: ~/.zshrc).',
    flags: [],
    async run(args, io) {
      const { runCompletion } = await import("./completion.ts");
      const { ctlVerbs, CTL_COMMON_FLAGS } = await import("./ctl.ts");
      const commands = Object.entries(COMMANDS).map(([name, c]) => ({ name, flags: c.flags }));
      return runCompletion(args.positional[0], io, commands, ctlVerbs(), CTL_COMMON_FLAGS);
    },
  },
  version: {
    usage: "skein version [-o json]",
    summary: "Print the skein version, the Deno version and the git commit if known.",
    flags: [{
      name: "output",
      short: "o",
      value: true,
      help: "text | json",
      choices: ["text", "json"],
    }],
    async run(args, io) {
      const { runVersion } = await import("./version.ts");
      return await runVersion(io, args.flags.get("output") === "json");
    },
  },
  "check-config": {
    usage: "skein check-config FILE [--kind control|proxy|resources]",
    summary: "Validate a control, proxy or resource YAML file and exit (0 valid, 2 invalid).",
    flags: [{
      name: "kind",
      value: true,
      help: "control | proxy | resources (default: guessed)",
      choices: ["control", "proxy", "resources"],
    }],
    async run(args, io) {
      const file = args.positional[0];
      if (!file || args.positional.length > 1) {
        throw new UsageError("check-config takes exactly one FILE");
      }
      const { runCheckConfig } = await import("./check_config.ts");
      const kind = args.flags.get("kind") as "control" | "proxy" | "resources" | undefined;
      return await runCheckConfig(file, kind, io);
    },
  },
};

/** The top-level help text. */
export function topHelp(): string {
  const rows = Object.entries(COMMANDS).map(([n, c]) =>
    wrapText(c.summary.split("\n")[0]!, " ".repeat(17)).join("\n").replace(
      /^ {17}/,
      `  ${n.padEnd(14)} `,
    )
  );
  return `skein: a service mesh for VMs and edge machines\n\nusage: skein <command> [flags]\n\ncommands:\n${
    rows.join("\n")
  }\n\nRun \`skein <command> --help\` for a command's flags.\n`;
}

/** Runs the CLI with the given arguments and returns the exit code. */
export async function main(argv: readonly string[], io: CommandIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    (name === undefined ? io.stderr : io.stdout)(topHelp());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === "--version") return await COMMANDS.version!.run(parseArgs([], []), io, _nullLog());
  if (name === "__proxy-config") {
    // Internal, not a command of the help: `skein proxy` reads its file through it
    // (cmd/proxy_config_child.ts).
    const { runConfigDump } = await import("./config_dump.ts");
    return await runConfigDump(rest, io);
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    const hint = didYouMean(name, Object.keys(COMMANDS));
    io.stderr(
      `skein: unknown command "${name}"${
        hint ? `; did you mean "${hint}"?` : ""
      }\nRun \`skein --help\` for the list of commands.\n`,
    );
    return EXIT.usage;
  }
  try {
    if (cmd.passThrough) {
      return await cmd.run({ flags: new Map(), positional: [...rest] }, io, _nullLog());
    }
    const args = parseArgs(rest, cmd.flags);
    if (args.flags.has("help")) {
      io.stdout(formatHelp(cmd.usage, cmd.summary, cmd.flags));
      return EXIT.ok;
    }
    const level = args.flags.get("log-level") ?? io.env.SKEIN_LOG_LEVEL;
    const format = args.flags.get("log-format") ?? io.env.SKEIN_LOG_FORMAT;
    const logControl: LogControl = {
      settings: {
        level: (level ?? "info") as LogLevel,
        format: (format ?? "logfmt") as LogFormat,
      },
      cliLevel: level !== undefined,
      cliFormat: format !== undefined,
    };
    const log = createLogger({ settings: logControl.settings });
    return await cmd.run(args, io, log, logControl);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`skein ${name}: ${e.message}\n${cmd.usage ? `usage: ${cmd.usage}\n` : ""}`);
      return EXIT.usage;
    }
    io.stderr(`skein ${name}: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT.failure;
  }
}

function _nullLog(): Logger {
  return createLogger({ level: "error" });
}

if (import.meta.main) {
  (await import("./task_cwd.ts")).enterTaskCwd();
  Deno.exit(await main(Deno.args, processIo()));
}
