/** `skein completion bash|zsh` completes commands, ctl verbs, resource kinds and flags in bash. */
import { assert, assertEquals } from "./assert.ts";
import { runSkein } from "./skein_cli.ts";

Deno.test("the bash completion script completes commands, verbs, kinds and flags", async () => {
  const script = await runSkein(["completion", "bash"]);
  assertEquals(script.code, 0, script.stderr);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/skein.bash`, script.stdout);
    const probe = `
source "${dir}/skein.bash"
for w in "skein ct" "skein ctl ge" "skein ctl get Ro" "skein ctl check --token-f" "skein proxy --con"; do
  read -ra COMP_WORDS <<< "$w"; COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); COMPREPLY=(); _skein
  echo "$w => \${COMPREPLY[*]}"
done`;
    const out = await new Deno.Command("bash", { args: ["-c", probe], stdin: "null" }).output();
    const text = new TextDecoder().decode(out.stdout);
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    assertEquals(text.trim().split("\n"), [
      "skein ct => ctl",
      "skein ctl ge => get",
      "skein ctl get Ro => Route",
      "skein ctl check --token-f => --token-file",
      "skein proxy --con => --config",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const zsh = await runSkein(["completion", "zsh"]);
  assertEquals(zsh.code, 0);
  assert(
    zsh.stdout.includes("bashcompinit") &&
      zsh.stdout.includes("complete -o default -F _skein skein"),
  );
  const fish = await runSkein(["completion", "fish"]);
  assertEquals(fish.code, 2);
  assert(fish.stderr.includes("expected bash or zsh"), fish.stderr);
});
