/**
 * `skein control` with an offline-root seed (root certificate + intermediate pair) refuses at
 * start, with one error line naming the file, an intermediate that its configured root did not
 * sign, an expired or not-yet-valid intermediate, an intermediate key that is not its
 * certificate's, and a root key left beside the intermediate. Nothing is served and the files
 * are left as they were.
 */
import { assert, assertEquals } from "../assert.ts";
import { runSkein } from "../skein_cli.ts";
import {
  type CertAndKey,
  createOfflineRootCa,
  INTERMEDIATE_CERT_FILE,
  INTERMEDIATE_KEY_FILE,
  SEED_CERT_FILE,
  SEED_KEY_FILE,
  signIntermediate,
} from "../../control/ca/mod.ts";
import { TEST_TRUST_DOMAIN } from "../tls_fixture.ts";

const DAY_MS = 86_400_000;

async function _seed(dir: string, root: CertAndKey, i: CertAndKey, rootKey = false) {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/${SEED_CERT_FILE}`, root.certPem);
  if (rootKey) await Deno.writeTextFile(`${dir}/${SEED_KEY_FILE}`, root.keyPem, { mode: 0o600 });
  await Deno.writeTextFile(`${dir}/${INTERMEDIATE_CERT_FILE}`, i.certPem);
  await Deno.writeTextFile(`${dir}/${INTERMEDIATE_KEY_FILE}`, i.keyPem, { mode: 0o600 });
}

async function _files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    out.push(`${e.name}=${await Deno.readTextFile(`${dir}/${e.name}`)}`);
  }
  return out.sort();
}

async function _startWith(dir: string, seedDir: string) {
  const before = await _files(seedDir);
  await Deno.writeTextFile(
    `${dir}/control.yaml`,
    JSON.stringify({
      node: "cp-1",
      trust_domain: TEST_TRUST_DOMAIN,
      data_dir: `${dir}/data`,
      api: "127.0.0.1:0",
      raft: "127.0.0.1:0",
      bootstrap_token_file: `${dir}/admin.token`,
      // The intermediate files are found beside ca_cert_file by default.
      tls: {
        ca_cert_file: `${seedDir}/${SEED_CERT_FILE}`,
        ca_key_file: `${seedDir}/${SEED_KEY_FILE}`,
      },
    }),
  );
  const r = await runSkein(["control", "--config", `${dir}/control.yaml`]);
  assertEquals(await _files(seedDir), before, "a refused seed is left as it was");
  const errors = r.stderr.split("\n").filter((l) => /level=error|"level":"error"/.test(l));
  return { code: r.code, errors, all: r.stdout + r.stderr };
}

Deno.test("skein control refuses a foreign, expired, not-yet-valid or mismatched intermediate, and a root key beside it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const now = Date.now();
    const made = await createOfflineRootCa({ trustDomain: TEST_TRUST_DOMAIN, now });
    const other = await createOfflineRootCa({ trustDomain: TEST_TRUST_DOMAIN, now });
    const sign = (at: number, validityMs?: number) =>
      signIntermediate({
        rootCertPem: made.root.certPem,
        rootKeyPem: made.root.keyPem,
        now: at,
        ...(validityMs !== undefined ? { validityMs } : {}),
      });
    const cases: { name: string; make: (d: string) => Promise<void>; want: RegExp }[] = [
      {
        name: "another root's intermediate",
        make: (d) => _seed(d, made.root, other.intermediate),
        want: /intermediate\.pem: intermediate is not signed by the configured root/,
      },
      {
        name: "expired",
        make: async (d) => _seed(d, made.root, await sign(now - 3 * DAY_MS, DAY_MS)),
        want: /intermediate\.pem: intermediate expired at/,
      },
      {
        name: "not valid yet",
        make: async (d) => _seed(d, made.root, await sign(now + 2 * DAY_MS)),
        want: /intermediate\.pem: intermediate is not valid before/,
      },
      {
        name: "key of another intermediate",
        make: (d) =>
          _seed(d, made.root, {
            certPem: made.intermediate.certPem,
            keyPem: other.intermediate.keyPem,
          }),
        want: /intermediate\.key: intermediate key does not match the intermediate certificate/,
      },
      {
        name: "root key on the server",
        make: (d) => _seed(d, made.root, made.intermediate, true),
        want: /ca\.key: a root key beside the intermediate/,
      },
    ];
    for (const [n, c] of cases.entries()) {
      const seedDir = `${dir}/seed-${n}`;
      await c.make(seedDir);
      const r = await _startWith(dir, seedDir);
      assertEquals(r.code, 1, `${c.name}: ${r.all}`);
      assertEquals(r.errors.length, 1, `${c.name}: one error line\n${r.all}`);
      assert(c.want.test(r.errors[0]!), `${c.name}: ${r.errors[0]}`);
      assert(!r.all.includes("listening"), `${c.name}: nothing is served\n${r.all}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
