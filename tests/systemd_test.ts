import { assert, assertEquals } from "./assert.ts";

const UNITS = ["skein-control.service", "skein-proxy.service"];
const UNIT_DIR = new URL("../config/systemd/", import.meta.url).pathname;

function hasSystemdAnalyze(): boolean {
  try {
    return new Deno.Command("systemd-analyze", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .outputSync().success;
  } catch {
    return false;
  }
}

Deno.test("systemd units carry the hardening the SPEC asks for", async () => {
  for (const u of UNITS) {
    const text = await Deno.readTextFile(UNIT_DIR + u);
    for (
      const line of [
        "User=skein",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "Restart=on-failure",
        "LimitNOFILE=",
        "StateDirectory=skein",
      ]
    ) {
      assert(text.includes(line), `${u} lacks ${line}`);
    }
    assert(
      /^ExecStart=\/usr\/local\/bin\/skein (control|proxy) --config \/etc\/skein\//m.test(text),
    );
    // `systemctl reload` must re-read the file (SIGHUP), never stop the daemon.
    assert(text.includes("ExecReload=/bin/kill -HUP $MAINPID"), `${u} lacks ExecReload`);
  }
});

Deno.test({
  name: "systemd-analyze verify accepts both units without warnings",
  ignore: !hasSystemdAnalyze(),
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      // verify insists that ExecStart points at an executable; stand one in for the release binary.
      const fake = `${dir}/skein`;
      await Deno.writeTextFile(fake, "#!/bin/sh\nexit 0\n");
      await Deno.chmod(fake, 0o755);
      const paths = [];
      for (const u of UNITS) {
        const text = (await Deno.readTextFile(UNIT_DIR + u)).replaceAll(
          "/usr/local/bin/skein",
          fake,
        );
        await Deno.writeTextFile(`${dir}/${u}`, text);
        paths.push(`${dir}/${u}`);
      }
      const out = await new Deno.Command("systemd-analyze", {
        args: ["verify", "--man=no", ...paths],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 0, stderr);
      assertEquals(stderr.trim(), "", "systemd-analyze printed warnings");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
