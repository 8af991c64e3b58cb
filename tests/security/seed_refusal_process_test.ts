/**
 * `skein control` refuses at start, with one error line naming the file and what to do, a CA
 * seed whose root is expired or not valid yet, or whose key is not its certificate's key. It
 * exits without serving anything and without touching the seed files.
 */
import { assert, assertEquals } from "../assert.ts";
import { runSkein } from "../skein_cli.ts";
import { createCa, writeSeedCa } from "../../control/ca/mod.ts";
import { TEST_TRUST_DOMAIN } from "../tls_fixture.ts";

const YEAR_MS = 365 * 86_400_000;

async function _startWith(dir: string, certFile: string, keyFile: string) {
  const before = [await Deno.readTextFile(certFile), await Deno.readTextFile(keyFile)];
  await Deno.writeTextFile(
    `${dir}/control.yaml`,
    JSON.stringify({
      node: "cp-1",
      trust_domain: TEST_TRUST_DOMAIN,
      data_dir: `${dir}/data`,
      api: "127.0.0.1:0",
      raft: "127.0.0.1:0",
      bootstrap_token_file: `${dir}/admin.token`,
      tls: { ca_cert_file: certFile, ca_key_file: keyFile },
    }),
  );
  const r = await runSkein(["control", "--config", `${dir}/control.yaml`]);
  const after = [await Deno.readTextFile(certFile), await Deno.readTextFile(keyFile)];
  assertEquals(after, before, "a refused seed is left as it was");
  const errors = r.stderr.split("\n").filter((l) => /level=error|"level":"error"/.test(l));
  return { code: r.code, errors, all: r.stdout + r.stderr };
}

Deno.test("skein control refuses an expired root, a root not valid yet and a key that is not the root's", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const now = Date.now();
    const cases: { name: string; make: () => Promise<[string, string]>; want: RegExp }[] = [
      {
        name: "expired",
        make: async () => {
          const ca = await createCa({ trustDomain: TEST_TRUST_DOMAIN, now: now - 11 * YEAR_MS });
          const w = await writeSeedCa(`${dir}/expired`, ca);
          return [w.certFile, w.keyFile];
        },
        want: /ca\.pem: root expired at .*check the clock/,
      },
      {
        name: "not valid yet",
        make: async () => {
          const ca = await createCa({ trustDomain: TEST_TRUST_DOMAIN, now: now + 86_400_000 });
          const w = await writeSeedCa(`${dir}/future`, ca);
          return [w.certFile, w.keyFile];
        },
        want: /ca\.pem: root is not valid before .*check the clock/,
      },
      {
        name: "key of another root",
        make: async () => {
          const a = await writeSeedCa(
            `${dir}/a`,
            await createCa({ trustDomain: TEST_TRUST_DOMAIN, now }),
          );
          const b = await writeSeedCa(
            `${dir}/b`,
            await createCa({ trustDomain: TEST_TRUST_DOMAIN, now }),
          );
          return [a.certFile, b.keyFile];
        },
        want: /ca\.key: private key does not match the root certificate.*same/,
      },
    ];
    for (const c of cases) {
      const [certFile, keyFile] = await c.make();
      const r = await _startWith(`${dir}`, certFile, keyFile);
      assertEquals(r.code, 1, `${c.name}: ${r.all}`);
      assertEquals(r.errors.length, 1, `${c.name}: one error line\n${r.all}`);
      assert(c.want.test(r.errors[0]!), `${c.name}: ${r.errors[0]}`);
      assert(!r.all.includes("listening"), `${c.name}: nothing is served\n${r.all}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
