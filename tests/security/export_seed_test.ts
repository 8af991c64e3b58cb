/**
 * `skein ctl ca export-seed`: the files a new control node needs after a rotation, admin only,
 * written 0600 and checked like a seed at start; and the hint a node with outdated seed files
 * gets when its peers' certificates come from a root it does not trust.
 */
import assert from "node:assert/strict";
import { memoryLogger } from "../../common/log.ts";
import { activateRoot, beginRotation, createCa, loadOrCreateSeedCa } from "../../control/ca/mod.ts";
import { createOperatorToken } from "../../control/auth/mod.ts";
import { createApi } from "../../control/api/app.ts";
import { FakeBackend } from "../control/fake_backend.ts";
import { operatorAuthorizer } from "../../control/api/operator_auth.ts";
import {
  CLOCK_BEHIND_HINT,
  CLOCK_OR_EXPIRY_HINT,
  explainUntrustedPeer,
  SEED_REFRESH_HINT,
} from "../../control/transport/seed_hint.ts";
import { writeExportedSeed } from "../../cmd/ctl/ca_format.ts";

Deno.test("export-seed hands an admin the active root after a rotation, written 0600", async () => {
  const now = Date.now();
  const backend = new FakeBackend();
  const ca0 = await createCa({ trustDomain: "skein.local", now });
  const ca1 = await beginRotation(ca0, { now, trigger: "operator" });
  const ca2 = activateRoot(ca1, ca1.rotation!.newRootId, now);
  backend.applyDirect({
    type: "put_ca",
    ca: ca2 as unknown as Record<string, unknown>,
    expect_root_id: null,
  });
  const admin = createOperatorToken({ name: "adm", role: "admin", now });
  const op = createOperatorToken({ name: "op", role: "operator", now });
  backend.applyDirect({ type: "put_operator_token", record: admin.record });
  backend.applyDirect({ type: "put_operator_token", record: op.record });
  const log = memoryLogger();
  const app = createApi(backend, {
    logger: log,
    authorize: operatorAuthorizer({ tokens: () => backend.state().operatorTokens(), log }),
  });
  const call = (token?: string) =>
    app.request("/v1/ca/export-seed", {
      method: "POST",
      headers: token ? { authorization: `Bearer ${token}` } : {},
      body: "{}",
    });
  assert.equal((await call()).status, 401);
  const denied = await call(op.secret);
  assert.equal(denied.status, 403, "an operator token is not enough");
  assert.ok(!(await denied.text()).includes("PRIVATE KEY"));
  const res = await call(admin.secret);
  assert.equal(res.status, 200);
  const json = await res.json();
  assert.equal(json.root_id, ca2.activeRootId, "the root that signs now");
  assert.ok(log.lines.some((l) => l.includes("CA seed exported")), "every export is logged");
  assert.ok(!log.lines.join("\n").includes("PRIVATE KEY"));

  const dir = await Deno.makeTempDir();
  try {
    const w = await writeExportedSeed(json, `${dir}/seed`);
    for (const f of [w.certFile, w.keyFile]) {
      assert.equal((await Deno.stat(f)).mode! & 0o777, 0o600, f);
    }
    const loaded = await loadOrCreateSeedCa({
      certFile: w.certFile,
      keyFile: w.keyFile,
      trustDomain: "skein.local",
      create: false,
      now,
    });
    assert.equal(loaded.activeRootId, ca2.activeRootId, "a new node starts from the new root");
    await assert.rejects(writeExportedSeed(json, `${dir}/seed`), /refusing to overwrite/);
    await assert.rejects(
      writeExportedSeed({ ...json, key_pem: ca0.roots[0]!.keyPem }, `${dir}/bad`),
      /does not match/,
      "a key that does not match its certificate is refused",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a peer certificate from an untrusted root says which files to refresh", () => {
  const e = Object.assign(new Error("unable to get local issuer certificate"), {
    code: "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  });
  const out = explainUntrustedPeer(e) as Error;
  assert.equal(out, e, "the same error: its class and fields still tell the failure apart");
  assert.ok(out.message.includes(SEED_REFRESH_HINT));
  assert.match(out.message, /tls\.ca_cert_file and tls\.ca_key_file/);
  const named = explainUntrustedPeer(new Error("self-signed certificate in certificate chain"), {
    peer: "cp-2",
    trustedRootIds: ["ab12"],
  }) as Error;
  assert.match(
    named.message,
    /this node trusts root ab12; `skein ctl ca roots` lists the cluster's: if they match, the files to refresh are peer cp-2's\)$/,
  );
  const behind = explainUntrustedPeer(
    Object.assign(new Error("certificate is not yet valid"), { code: "CERT_NOT_YET_VALID" }),
  ) as Error;
  assert.ok(behind.message.endsWith(CLOCK_BEHIND_HINT), behind.message);
  const expired = explainUntrustedPeer(new Error("certificate has expired")) as Error;
  assert.ok(expired.message.endsWith(CLOCK_OR_EXPIRY_HINT), expired.message);
  const other = new Error("connect ECONNREFUSED");
  assert.equal(explainUntrustedPeer(other), other, "other failures pass through unchanged");
});
