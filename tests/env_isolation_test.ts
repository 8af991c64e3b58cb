/**
 * `skein ctl`'s environment (install.md exports SKEIN_CONTROL and SKEIN_CA_FILE for it) never
 * configures a daemon, and `check-config` judges what the daemon would really load.
 * @module
 */
import { assert, assertEquals } from "./assert.ts";
import { runSkein } from "./skein_cli.ts";
import { loadModeConfig } from "../cmd/load_config.ts";
import { ProxyConfig } from "../config/mod.ts";

const EXAMPLE = new URL("../config/examples/proxy.yaml", import.meta.url).pathname;
const CTL_ENV = {
  SKEIN_CONTROL: "https://10.9.9.9:7400",
  SKEIN_CA_FILE: "/elsewhere/ca.pem",
  SKEIN_TOKEN_FILE: "/elsewhere/admin.token",
  SKEIN_TOKEN: "not-a-config-key",
};

Deno.test("ctl's variables do not reach the proxy's control, ca_file or token_file", async () => {
  const err: string[] = [];
  const io = { stdout: () => {}, stderr: (t: string) => err.push(t), env: CTL_ENV };
  const cfg = await loadModeConfig(EXAMPLE, ProxyConfig, undefined, io);
  assert(cfg !== null, err.join(""));
  const plain = await loadModeConfig(EXAMPLE, ProxyConfig, undefined, { ...io, env: {} });
  assertEquals(cfg.control, plain!.control);
  assertEquals(cfg.ca_file, plain!.ca_file);
  assertEquals(cfg.token_file, plain!.token_file);
});

Deno.test("check-config applies the daemon's SKEIN_* overrides and ignores ctl's", async () => {
  const ok = await runSkein(["check-config", EXAMPLE], { env: CTL_ENV });
  assertEquals(ok.code, 0, ok.stderr);
  assert(!ok.stdout.includes("overrides"), ok.stdout);
  // An override the proxy would apply is judged too, and named.
  const bad = await runSkein(["check-config", EXAMPLE], { env: { SKEIN_ADMIN: "nowhere" } });
  assertEquals(bad.code, 2, bad.stdout);
  assert(bad.stderr.includes("env SKEIN_ADMIN"), bad.stderr);
  const good = await runSkein(["check-config", EXAMPLE], {
    env: { SKEIN_ADMIN: "127.0.0.1:15001" },
  });
  assertEquals(good.code, 0, good.stderr);
  assert(good.stdout.includes("with environment overrides SKEIN_ADMIN"), good.stdout);
});
