/**
 * What the offline-root process tests share: `skein ctl` pointed at a node with the root as
 * its trust anchor, one-use join tokens written to files, and a leaf minted with a copied
 * intermediate pair, as an attacker holding a control node's disk would mint it.
 * @module
 */
import { X509Certificate } from "node:crypto";
import { assertEquals } from "../assert.ts";
import { request } from "../control_process/cluster.ts";
import { runSkein } from "../skein_cli.ts";
import {
  type CaIntermediate,
  type CaState,
  checkIntermediate,
  issueCertificate,
} from "../../control/ca/mod.ts";

/** Runs `skein ctl ARGS` against `api` with the admin `token`, trusting `caFile` only. */
export function ctlAt(
  api: string,
  token: string,
  caFile: string,
): (args: string[]) => ReturnType<typeof runSkein> {
  return (args) =>
    runSkein(["ctl", ...args, "--control", api, "--token", token, "--ca-file", caFile]);
}

/** Creates a one-use join token for `service` at `api` and writes it to `dir/<service>.token`. */
export async function joinTokenFile(api: string, dir: string, service: string): Promise<string> {
  const r = await request(`${api}/v1/tokens`, "POST", { service, ttl: "1h", uses: 1 });
  assertEquals(r.status, 201, JSON.stringify(r.json));
  const file = `${dir}/${service}.token`;
  await Deno.writeTextFile(file, `${r.json!.token}\n`);
  return file;
}

/**
 * A leaf for `service` signed with `pair` (an intermediate of the root `rootPem` that `api`
 * serves as active), and that intermediate as the CA records it.
 */
export async function mintWithIntermediate(
  api: string,
  rootPem: string,
  pair: { certPem: string; keyPem: string },
  trustDomain: string,
  service: string,
): Promise<{ minted: { certPem: string; keyPem: string }; intermediate: CaIntermediate }> {
  const rootId = String((await request(`${api}/v1/ca/roots`, "GET")).json!.active_root_id);
  const root = new X509Certificate(rootPem);
  const intermediate = await checkIntermediate({
    ...pair,
    rootCertPem: rootPem,
    trustDomain,
    now: Date.now(),
  });
  const attackerCa: CaState = {
    version: 1,
    trustDomain,
    name: "skein",
    activeRootId: rootId,
    roots: [{
      id: rootId,
      generation: 1,
      certPem: rootPem,
      notBefore: Date.parse(root.validFrom),
      notAfter: Date.parse(root.validTo),
      intermediate,
    }],
    revoked: [],
  };
  const minted = await issueCertificate(attackerCa, {
    identity: { kind: "service", service },
    now: Date.now(),
  });
  return { minted, intermediate };
}
