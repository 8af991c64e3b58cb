import { X509Certificate } from "node:crypto";
import { assert, assertEquals, assertRejects, assertThrows } from "../../tests/assert.ts";
import { DistrustedIssuers, splitPemCerts } from "../../common/tls/mod.ts";
import {
  CaError,
  createOfflineRootCa,
  distrustBlockers,
  distrustedIntermediatePems,
  distrustIntermediate,
  installIntermediate,
  issueCertificate,
  MAX_RETIRED_INTERMEDIATES,
  membersOnIntermediate,
  parseCaState,
  publicCaView,
  signIntermediate,
} from "./mod.ts";

const NOW = Date.now();
const TD = "skein.local";
const A = { kind: "service", service: "a" } as const;

async function rotated() {
  const made = await createOfflineRootCa({ trustDomain: TD, now: NOW });
  const next = await signIntermediate({
    rootCertPem: made.root.certPem,
    rootKeyPem: made.root.keyPem,
    now: NOW,
  });
  const after = await installIntermediate(made.state, { ...next, now: NOW + 1 });
  return { made, next, after };
}

function code(f: () => unknown): string {
  const e = assertThrows(f, CaError);
  return (e as CaError).code;
}

Deno.test("installing a new intermediate remembers the old one, still trusted, without its key", async () => {
  const { made, after } = await rotated();
  const old = made.state.roots[0]!.intermediate!;
  assertEquals(after.retiredIntermediates?.length, 1);
  const r = after.retiredIntermediates![0]!;
  assertEquals(r.id, old.id);
  assertEquals(r.certPem, old.certPem);
  assertEquals(r.fingerprint, new X509Certificate(old.certPem).fingerprint256);
  assertEquals(r.distrustedAt, null);
  assert(!JSON.stringify(after.retiredIntermediates).includes("PRIVATE KEY"));
  assertEquals(distrustedIntermediatePems(after, NOW), []);
  assertEquals(parseCaState(JSON.parse(JSON.stringify(after))), after);
  assertEquals(publicCaView(after).retiredIntermediates, after.retiredIntermediates);
});

Deno.test("distrustIntermediate() by id or fingerprint marks the old one; again changes nothing", async () => {
  const { made, after } = await rotated();
  const old = made.state.roots[0]!.intermediate!;
  const byId = distrustIntermediate(after, old.id, NOW + 5);
  assertEquals(byId.retiredIntermediates![0]!.distrustedAt, NOW + 5);
  assertEquals(distrustedIntermediatePems(byId, NOW + 5), [old.certPem]);
  const fp = new X509Certificate(old.certPem).fingerprint256;
  const byFp = distrustIntermediate(after, fp.toLowerCase(), NOW + 5);
  assertEquals(byFp, byId);
  assert(distrustIntermediate(byId, old.id.toUpperCase(), NOW + 9) === byId, "idempotent");
  assertEquals(parseCaState(JSON.parse(JSON.stringify(byId))), byId);
  // Once it has expired nothing chains through it: it leaves the list.
  assertEquals(distrustedIntermediatePems(byId, old.notAfter + 1), []);
});

Deno.test("distrusting the active intermediate or an unknown one is refused and changes nothing", async () => {
  const { next, after } = await rotated();
  const active = after.roots[0]!.intermediate!;
  assertEquals(code(() => distrustIntermediate(after, active.id, NOW)), "intermediate_active");
  const fp = new X509Certificate(next.certPem).fingerprint256;
  assertEquals(code(() => distrustIntermediate(after, fp, NOW)), "intermediate_active");
  assertEquals(code(() => distrustIntermediate(after, "abcdef", NOW)), "unknown_intermediate");
  assertEquals(code(() => distrustIntermediate(after, "", NOW)), "unknown_intermediate");
  assertEquals(after.retiredIntermediates![0]!.distrustedAt, null);
});

Deno.test("the retired list stays bounded, dropping a trusted entry before a distrusted one", async () => {
  const r = await rotated();
  const made = r.made;
  let ca = r.after;
  ca = distrustIntermediate(ca, made.state.roots[0]!.intermediate!.id, NOW);
  const firstDistrusted = ca.retiredIntermediates![0]!.id;
  for (let i = 0; i < MAX_RETIRED_INTERMEDIATES + 1; i++) {
    const n = await signIntermediate({
      rootCertPem: made.root.certPem,
      rootKeyPem: made.root.keyPem,
      now: NOW,
    });
    ca = await installIntermediate(ca, { ...n, now: NOW + 2 + i });
  }
  assertEquals(ca.retiredIntermediates!.length, MAX_RETIRED_INTERMEDIATES);
  assert(ca.retiredIntermediates!.some((r) => r.id === firstDistrusted));
});

Deno.test("DistrustedIssuers refuses a leaf the old intermediate signed, and only that one", async () => {
  const { made, after } = await rotated();
  const oldLeaf = await issueCertificate(made.state, { identity: A, now: NOW });
  const newLeaf = await issueCertificate(after, { identity: A, now: NOW });
  const distrusted = distrustIntermediate(after, made.state.roots[0]!.intermediate!.id, NOW);
  const list = new DistrustedIssuers(distrustedIntermediatePems(distrusted, NOW));
  assertEquals(list.size, 1);
  const oldDer = new X509Certificate(splitPemCerts(oldLeaf.certPem)[0]!).raw;
  const newDer = new X509Certificate(splitPemCerts(newLeaf.certPem)[0]!).raw;
  assert(list.refuses(oldDer));
  assert(!list.refuses(newDer));
  assert(!new DistrustedIssuers([]).refuses(oldDer));
  assert(!list.refuses(new Uint8Array([1, 2, 3])), "garbage is for the path check to refuse");
  assertEquals(new DistrustedIssuers(["not a pem"]).size, 0);
});

Deno.test("membersOnIntermediate() names members on the old intermediate or that never said", () => {
  const members = new Map<string, string | null | undefined>([
    ["svc/a/1", "OLD"],
    ["svc/a/2", "NEW"],
    ["svc/b/1", undefined],
    ["svc/c/1", null],
  ]);
  assertEquals(membersOnIntermediate(members, "OLD"), ["svc/a/1", "svc/b/1"]);
});

Deno.test("distrustBlockers() says who and until when, and nothing once both have passed", () => {
  const base = { intermediateId: "ab12", leavesValidUntil: NOW + 60_000, now: NOW };
  const both = distrustBlockers({ ...base, members: ["svc/a/1"] })!;
  assert(both.includes("1 member(s) may still hold a leaf from it (svc/a/1)"), both);
  assert(both.includes(new Date(NOW + 60_000).toISOString()), both);
  assert(both.includes("--now"), both);
  const many = distrustBlockers({
    ...base,
    members: Array.from({ length: 12 }, (_, i) => `m${i}`),
  })!;
  assert(many.includes("and 2 more"), many);
  assertEquals(distrustBlockers({ ...base, members: [], now: NOW + 60_000 }), null);
});

Deno.test("a retired list full of distrusted intermediates refuses the next rotation rather than trust one again", async () => {
  const r = await rotated();
  let ca = r.after;
  const sign = () =>
    signIntermediate({
      rootCertPem: r.made.root.certPem,
      rootKeyPem: r.made.root.keyPem,
      now: NOW,
    });
  ca = distrustIntermediate(ca, ca.retiredIntermediates![0]!.id, NOW);
  while (ca.retiredIntermediates!.length < MAX_RETIRED_INTERMEDIATES) {
    const active = ca.roots[0]!.intermediate!.id;
    ca = await installIntermediate(ca, { ...(await sign()), now: NOW + 1 });
    ca = distrustIntermediate(ca, active, NOW + 1);
  }
  const e = await assertRejects(
    async () => await installIntermediate(ca, { ...(await sign()), now: NOW + 2 }),
    CaError,
  );
  assertEquals((e as CaError).code, "invalid_intermediate");
});
