import assert from "node:assert/strict";
import { gitCommitIn } from "./version.ts";

async function git(dir: string, ...args: string[]): Promise<Deno.CommandOutput> {
  return await new Deno.Command("git", { args, cwd: dir, stdout: "piped", stderr: "piped" })
    .output();
}

// Chowning the tree to another user needs root, as a source install owned by root and run as
// `skein` does; git then refuses the tree unless it is named safe.
Deno.test({
  name: "skein version finds the commit of a source tree owned by another user",
  ignore: Deno.uid() !== 0,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "skein-version-" });
    try {
      assert.ok((await git(dir, "init", "-q")).success);
      const commit = await git(
        dir,
        "-c",
        "user.email=t@example.invalid",
        "-c",
        "user.name=t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "x",
      );
      assert.ok(commit.success, new TextDecoder().decode(commit.stderr));
      const head = new TextDecoder().decode(
        (await git(dir, "rev-parse", "--short=12", "HEAD")).stdout,
      )
        .trim();
      assert.match(head, /^[0-9a-f]{12}$/);
      await new Deno.Command("chown", { args: ["-R", "65534:65534", dir] }).output();
      // The situation the fix is for: plain git now refuses the tree.
      const plain = await git(dir, "rev-parse", "HEAD");
      assert.equal(plain.success, false, "git should refuse a tree owned by another user");
      assert.match(new TextDecoder().decode(plain.stderr), /dubious ownership/);
      assert.equal(await gitCommitIn(dir), head);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
