// Per-request cost of pick + onStart + onEnd for each policy, 20 endpoints in 2 zones.
import { createBalancer } from "../../mesh/balance/balancer.ts";
import { seededRandom } from "../../tests/seeded_random.ts";
import { BALANCER_POLICIES, type Endpoint } from "../../mesh/balance/types.ts";

const eps: Endpoint[] = Array.from({ length: 20 }, (_, i) => ({
  key: `ep-${i}`,
  hostname: "10.0.0.1",
  port: 15443,
  weight: 1 + (i % 3),
  zone: i % 2 === 0 ? "z1" : "z2",
}));
let t = 0;
for (const policy of BALANCER_POLICIES) {
  const b = createBalancer(policy, eps, {
    now: () => t,
    random: seededRandom(1),
    localZone: "z1",
  });
  let i = 0;
  Deno.bench(`${policy} pick+onStart+onEnd`, () => {
    const e = b.pick(undefined, policy === "ring_hash" ? `user-${i++ & 1023}` : undefined)!;
    b.onStart(e);
    t += 1;
    b.onEnd(e, 5, true);
  });
}
