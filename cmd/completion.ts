/**
 * `skein completion bash|zsh`: a shell completion script for the commands, ctl's verbs, the
 * resource kinds and the flags. zsh runs the same function through `bashcompinit`.
 * @module
 */
import { RESOURCE_KINDS } from "../config/mod.ts";
import type { FlagSpec } from "./cli/args.ts";
import { GLOBAL_FLAGS } from "./cli/args.ts";
import type { CommandIo } from "./cli/io.ts";
import { EXIT } from "./cli/io.ts";

/** What completion knows about one command: its flags. */
export interface CompletionCommand {
  name: string;
  flags: readonly FlagSpec[];
}

const _flags = (specs: readonly FlagSpec[]) =>
  [...specs, ...GLOBAL_FLAGS].map((f) => `--${f.name}`).join(" ");

/** The bash completion function for `commands` and ctl's `verbs` (with their flags). */
export function bashCompletion(
  commands: readonly CompletionCommand[],
  verbs: readonly CompletionCommand[],
  ctlFlags: readonly FlagSpec[],
): string {
  const cmdCases = commands.filter((c) => c.name !== "ctl").map((c) =>
    `    ${c.name}) COMPREPLY=($(compgen -W "${_flags(c.flags)}" -- "$cur")) ;;`
  );
  const verbCases = verbs.map((v) =>
    `        ${v.name}) words="${_flags([...v.flags, ...ctlFlags])}" ;;`
  );
  const kindVerbs = ["get", "delete", "history", "rollback", "watch"];
  return `# skein completion for bash: eval "$(skein completion bash)" in ~/.bashrc
_skein() {
  local cur words
  cur="\${COMP_WORDS[COMP_CWORD]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${commands.map((c) => c.name).join(" ")} help" -- "$cur"))
    return
  fi
  case "\${COMP_WORDS[1]}" in
    ctl)
      if [ "$COMP_CWORD" -eq 2 ]; then
        COMPREPLY=($(compgen -W "${verbs.map((v) => v.name).join(" ")}" -- "$cur"))
        return
      fi
      if [ "$COMP_CWORD" -eq 3 ] && [[ "$cur" != -* ]]; then
        case "\${COMP_WORDS[2]}" in
          ${kindVerbs.join("|")}) COMPREPLY=($(compgen -W "${
    RESOURCE_KINDS.join(" ")
  }" -- "$cur")); return ;;
        esac
      fi
      case "\${COMP_WORDS[2]}" in
${verbCases.join("\n")}
        *) words="${_flags(ctlFlags)}" ;;
      esac
      COMPREPLY=($(compgen -W "$words" -- "$cur")) ;;
${cmdCases.join("\n")}
  esac
}
complete -o default -F _skein skein
`;
}

/** The zsh script: bash's function through zsh's bashcompinit. */
export function zshCompletion(bash: string): string {
  return `# skein completion for zsh: eval "$(skein completion zsh)" in ~/.zshrc
autoload -U +X compinit && compinit
autoload -U +X bashcompinit && bashcompinit
${bash.split("\n").slice(1).join("\n")}`;
}

/** Prints the script for `shell`; exit 2 for another shell. */
export function runCompletion(
  shell: string | undefined,
  io: CommandIo,
  commands: readonly CompletionCommand[],
  verbs: readonly CompletionCommand[],
  ctlFlags: readonly FlagSpec[],
): number {
  const bash = bashCompletion(commands, verbs, ctlFlags);
  if (shell === "bash") io.stdout(bash);
  else if (shell === "zsh") io.stdout(zshCompletion(bash));
  else {
    io.stderr(`skein completion: expected bash or zsh, got ${shell ?? "nothing"}\n`);
    return EXIT.usage;
  }
  return EXIT.ok;
}
