import assert from "node:assert/strict";
import { CatalogFeed } from "./catalog_feed.ts";
import type { Catalog } from "../registry/mod.ts";

// deno-lint-ignore no-explicit-any
type Json = any;
const dec = (b: Uint8Array | null): Json =>
  b === null ? null : JSON.parse(new TextDecoder().decode(b));
const inst = (service: string, id: string) =>
  Object.freeze({
    service,
    id,
    address: "10.0.0.1",
    port: 80,
  }) as unknown as Catalog["services"][string][number];
const trust = { roots: [], revoked: [] };

function cat(index: number, services: Catalog["services"], extra: Partial<Catalog> = {}): Catalog {
  return { index, services, resources: [], trust, ...extra };
}

Deno.test("a delta carries only the services that changed since an index this node served", () => {
  const a1 = inst("a", "a1");
  const b1 = inst("b", "b1");
  const f = new CatalogFeed();
  f.observe(cat(5, { a: [a1], b: [b1] }));
  const b2 = inst("b", "b2");
  f.observe(cat(7, { a: [a1], b: [b1, b2] }));
  const d = dec(f.delta(5));
  assert.deepEqual(d, { index: 7, delta: { from: 5, services: { b: [b1, b2] }, removed: [] } });
  // Nothing changed since the current index: an empty delta, not the catalog.
  assert.deepEqual(dec(f.delta(7)), { index: 7, delta: { from: 7, services: {}, removed: [] } });
  // The same delta is encoded once and shared.
  assert.equal(f.delta(5), f.delta(5));
  assert.equal(f.full(), f.full());
});

Deno.test("removals, resources and trust changes reach the delta; steps add up", () => {
  const a1 = inst("a", "a1");
  const f = new CatalogFeed();
  f.observe(cat(1, { a: [a1], gone: [inst("gone", "g1")] }));
  f.observe(cat(2, { a: [a1] }));
  f.observe(cat(3, { a: [a1] }, { resources: [{ kind: "Policy", service: "a" }] }));
  f.observe(cat(4, { a: [a1] }, {
    resources: [{ kind: "Policy", service: "a" }],
    trust: { roots: ["R"], revoked: ["spiffe://x/svc/m"] },
  }));
  const d = dec(f.delta(1));
  assert.deepEqual(d.delta.removed, ["gone"]);
  assert.deepEqual(d.delta.services, {});
  assert.deepEqual(d.delta.resources, [{ kind: "Policy", service: "a" }]);
  assert.deepEqual(d.delta.trust, { roots: ["R"], revoked: ["spiffe://x/svc/m"] });
  const late = dec(f.delta(3));
  assert.equal(late.delta.resources, undefined);
  assert.deepEqual(late.delta.trust.revoked, ["spiffe://x/svc/m"]);
});

Deno.test("an index this node did not serve, or older than its log, gets no delta", () => {
  const f = new CatalogFeed(2);
  f.observe(cat(10, {}));
  // A service that came and went between 10 and 20 is recorded by no step: index 15 may hold
  // it, so only a whole catalog is safe there.
  f.observe(cat(20, {}));
  assert.equal(f.delta(15), null);
  assert.equal(f.delta(3), null);
  assert.notEqual(f.delta(10), null);
  f.observe(cat(30, {}));
  f.observe(cat(40, {}));
  // The log keeps two steps: 10 → 20 fell out.
  assert.equal(f.delta(10), null);
  assert.notEqual(f.delta(20), null);
  assert.equal(f.stats.fallbacks, 3);
  // A lower index (a rebuilt cluster) starts over.
  f.observe(cat(2, {}));
  assert.equal(f.delta(30), null);
});
